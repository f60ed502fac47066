/**
 * Micro benchmark of the one-to-one hot path, both backends (the full suite
 * with peers is bench/). Medians of batches; noisy machines: compare rows of
 * one run, not absolute numbers across runs.
 *
 *   node --import tsx packages/core/scripts/micro-bench.ts
 */
import { Account, type CryptoBackend, PreKeyStore, SessionRecord, cryptoProvider, nobleBackend } from '../src/index.ts';
import { isTorsionFreeEd25519 } from '../src/crypto/ed25519-keys.ts';
import { nodeBackend } from '../src/crypto/node.ts';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Median microseconds per call of `fn`, over `samples` batches of `batch` calls after a warm-up. */
function measure(fn: () => void, batch: number, samples: number): number {
  for (let i = 0; i < batch; i++) fn();
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    times.push(((performance.now() - t0) * 1000) / batch);
  }
  return median(times);
}

function pair(backend: CryptoBackend) {
  const provider = cryptoProvider(backend);
  const alice = Account.generate(provider).createDevice(1, provider);
  const bobDevice = Account.generate(provider).createDevice(1, provider);
  const bobPrekeys = PreKeyStore.generate(bobDevice, { oneTimePreKeys: 1, kemPreKeys: 1 }, provider);
  return { provider, alice, bobDevice, bobPrekeys };
}

const rows: string[] = [];
const payload = new Uint8Array(100).fill(42);
for (const backend of [nodeBackend, nobleBackend]) {
  const slow = backend.name === 'noble';
  const { provider, alice, bobDevice, bobPrekeys } = pair(backend);
  const bundle = bobPrekeys.bundle({ oneTimePreKey: false, oneTimeKemPreKey: false });

  const setup = measure(
    () => {
      const a = SessionRecord.initiate(alice, bundle, { provider });
      const b = new SessionRecord(provider);
      b.decrypt(a.encrypt(payload), { device: bobDevice, prekeys: bobPrekeys });
      a.decrypt(b.encrypt(payload));
    },
    slow ? 2 : 20,
    slow ? 5 : 11,
  );

  const a = SessionRecord.initiate(alice, bundle, { provider });
  const b = new SessionRecord(provider);
  b.decrypt(a.encrypt(payload), { device: bobDevice, prekeys: bobPrekeys });
  a.decrypt(b.encrypt(payload));
  const same = measure(() => void b.decrypt(a.encrypt(payload)), 2000, 15);

  let turn = false;
  const pingPong = measure(
    () => {
      turn = !turn;
      if (turn) b.decrypt(a.encrypt(payload));
      else a.decrypt(b.encrypt(payload));
    },
    slow ? 10 : 200,
    slow ? 5 : 15,
  );
  rows.push(`| ${backend.name} | ${same.toFixed(1)} | ${pingPong.toFixed(1)} | ${(setup / 1000).toFixed(2)} |`);
}
console.log('| backend | same-direction encrypt+decrypt 100 B (us) | ping-pong per message (us) | setup: bundle -> first reply (ms) |');
console.log('| --- | --- | --- | --- |');
for (const r of rows) console.log(r);

// Ed25519 verification and the torsion-free key check (spec/01-conventions.md §3.2): a key seen
// before is answered from the cache; a key never seen costs one [L]A multiplication on top.
const edRows: string[] = [];
const message = new Uint8Array(100).fill(7);
for (const backend of [nodeBackend, nobleBackend]) {
  const count = backend.name === 'noble' ? 40 : 200;
  const keys = Array.from({ length: count }, (_, i) => {
    const seed = backend.sha256(Uint8Array.of(i, backend.name.length));
    return { publicKey: backend.ed25519PublicKey(seed), signature: backend.ed25519Sign(seed, message) };
  });
  const first = keys[0] as (typeof keys)[number];
  const cached = measure(() => void backend.ed25519Verify(first.publicKey, message, first.signature), count, 11);
  // Every key once: each verification is the first under its key (a cache miss).
  const t0 = performance.now();
  for (const k of keys.slice(1)) backend.ed25519Verify(k.publicKey, message, k.signature);
  const fresh = ((performance.now() - t0) * 1000) / (keys.length - 1);
  const check = measure(() => void isTorsionFreeEd25519(first.publicKey), backend.name === 'noble' ? 20 : 50, 11);
  edRows.push(`| ${backend.name} | ${cached.toFixed(0)} | ${fresh.toFixed(0)} | ${check.toFixed(0)} |`);
}
console.log('');
console.log('| backend | Ed25519 verify, key seen before (us) | verify under a new key (us) | torsion check alone (us) |');
console.log('| --- | --- | --- | --- |');
for (const r of edRows) console.log(r);

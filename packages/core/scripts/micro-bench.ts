/**
 * Micro benchmark of the one-to-one hot path, both backends (the full suite
 * with peers is bench/). Medians of batches; noisy machines: compare rows of
 * one run, not absolute numbers across runs.
 *
 *   node --import tsx packages/core/scripts/micro-bench.ts
 */
import { Account, type CryptoBackend, PreKeyStore, SessionRecord, cryptoProvider, nobleBackend } from '../src/index.ts';
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

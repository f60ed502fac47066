/**
 * Portable timings (Node and browsers: only `performance.now()` and
 * @parley/core): Parley's session setup and ping-pong on a given backend,
 * and single curve operations, synchronous (a backend) or asynchronous
 * (WebCrypto). Used by ../browser.ts in Node and, bundled, in Chromium.
 *
 * Each figure is the median of SAMPLES samples, each the mean of enough
 * iterations to last about SAMPLE_MS.
 */
import {
  Account,
  type AsyncCurves,
  type CryptoBackend,
  type CryptoProvider,
  PreKeyStore,
  SessionRecord,
  type WebCryptoCurves,
  cryptoProvider,
  decodeBundle,
  encodeBundle,
  runWithAsyncCurves,
} from '@parley/core';

/** Samples per figure (the median is reported). */
const SAMPLES = 7;
/** Target length of one sample. */
const SAMPLE_MS = 150;

export interface Timing {
  readonly op: string;
  readonly variant: string;
  /** Median time per operation, microseconds. */
  readonly micros: number;
}

const payload = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);

async function time(run: (i: number) => unknown | Promise<unknown>): Promise<number> {
  // Calibrate: how many iterations fill one sample.
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await run(i);
    const dt = performance.now() - t0;
    if (dt >= SAMPLE_MS / 4 || n >= 1 << 16) {
      n = Math.max(1, Math.round((n * SAMPLE_MS) / Math.max(dt, 0.001)));
      break;
    }
    n *= 2;
  }
  const samples: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await run(i);
    samples.push(((performance.now() - t0) * 1000) / n);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(SAMPLES / 2)] as number;
}

function expectLength(p: Uint8Array, n: number): void {
  if (p.length !== n) throw new Error(`round trip returned ${p.length} bytes, expected ${n}`);
}

/** Setup (bundle decode+verify, PQXDH, first message, responder) and ping-pong (a DH ratchet step per message), 100 B. */
export async function sessionTimings(backend: CryptoBackend): Promise<Timing[]> {
  const provider = cryptoProvider(backend);
  const small = payload(100);
  const alice = Account.generate(provider).createDevice(1, provider);
  const bob = Account.generate(provider).createDevice(1, provider);
  // Enough one-time prekeys for every setup iteration the calibration may ask for (setup costs milliseconds).
  const prekeys = PreKeyStore.generate(bob, { oneTimePreKeys: 1000, kemPreKeys: 1 }, provider);
  const bundles = prekeys
    .oneTimePreKeys()
    .map((otk) => encodeBundle({ ...prekeys.bundle(), oneTimePreKey: otk, kemPreKey: prekeys.lastResortKemPreKey() }));
  let used = 0;
  const setup = await time(() => {
    const bundle = decodeBundle(bundles[used++ % bundles.length] as Uint8Array);
    const initiator = SessionRecord.initiate(alice, bundle, { provider });
    const responder = new SessionRecord(provider);
    expectLength(responder.decrypt(initiator.encrypt(small), { device: bob, prekeys }).plaintext, 100);
  });

  const fresh = PreKeyStore.generate(bob, { oneTimePreKeys: 1, kemPreKeys: 1 }, provider);
  const ab = SessionRecord.initiate(alice, fresh.bundle(), { provider });
  const ba = new SessionRecord(provider);
  ba.decrypt(ab.encrypt(payload(16)), { device: bob, prekeys: fresh });
  ab.decrypt(ba.encrypt(payload(16)));
  let turn = 0;
  const pingPong = await time(() => {
    const [from, to] = turn++ % 2 === 0 ? [ab, ba] : [ba, ab];
    expectLength(to.decrypt(from.encrypt(small)).plaintext, 100);
  });
  return [
    { op: 'setup', variant: backend.name, micros: setup },
    { op: 'ping-pong', variant: backend.name, micros: pingPong },
  ];
}

/** One X25519 exchange, one Ed25519 signature and one verification, on a sync backend and (when given) WebCrypto. */
export async function curveTimings(backend: CryptoBackend, web: WebCryptoCurves | null): Promise<Timing[]> {
  const a = backend.randomBytes(32);
  const bPub = backend.x25519PublicKey(backend.randomBytes(32));
  const message = payload(200);
  const edPub = backend.ed25519PublicKey(a);
  const sig = backend.ed25519Sign(a, message);
  const out: Timing[] = [
    { op: 'x25519', variant: backend.name, micros: await time(() => backend.x25519(a, bPub)) },
    { op: 'ed25519 sign', variant: backend.name, micros: await time(() => backend.ed25519Sign(a, message)) },
    { op: 'ed25519 verify', variant: backend.name, micros: await time(() => backend.ed25519Verify(edPub, message, sig)) },
  ];
  if (web) {
    out.push(
      { op: 'x25519', variant: 'webcrypto', micros: await time(() => web.x25519(a, bPub)) },
      { op: 'ed25519 sign', variant: 'webcrypto', micros: await time(() => web.ed25519Sign(a, message)) },
      { op: 'ed25519 verify', variant: 'webcrypto', micros: await time(() => web.ed25519Verify(edPub, message, sig)) },
    );
  }
  return out;
}

/**
 * Setup and ping-pong as an app runs them: each step loads the records from
 * their stored bytes and stores them again. `curves` null: synchronously on
 * `base`; else through runWithAsyncCurves (the session layer on WebCrypto's
 * curves, packages/core/src/crypto/async-curves.ts), which needs the
 * load-and-store form because a replayed run starts from the stored bytes.
 */
export async function storedSessionTimings(base: CryptoProvider, curves: AsyncCurves | null, variant: string): Promise<Timing[]> {
  const run = <T>(step: (p: CryptoProvider) => T): T | Promise<T> => (curves ? runWithAsyncCurves(curves, step, { base }) : step(base));
  const small = payload(100);
  const alice = Account.generate(base).createDevice(1, base);
  const bob = Account.generate(base).createDevice(1, base);
  let prekeyBytes = PreKeyStore.generate(bob, { oneTimePreKeys: 1000, kemPreKeys: 1 }, base).serialize();
  const stored = PreKeyStore.deserialize(prekeyBytes, bob, base);
  const bundles = stored
    .oneTimePreKeys()
    .map((otk) => encodeBundle({ ...stored.bundle(), oneTimePreKey: otk, kemPreKey: stored.lastResortKemPreKey() }));
  let used = 0;
  const setup = await time(async () => {
    const bundle = bundles[used++ % bundles.length] as Uint8Array;
    const first = await run((p) => {
      const initiator = SessionRecord.initiate(alice, decodeBundle(bundle), { provider: p });
      return { message: initiator.encrypt(small), record: initiator.serialize() };
    });
    const out = await run((p) => {
      const responder = new SessionRecord(p);
      const prekeys = PreKeyStore.deserialize(prekeyBytes, bob, p);
      const plaintext = responder.decrypt(first.message, { device: bob, prekeys }).plaintext;
      return { plaintext, record: responder.serialize(), prekeys: prekeys.serialize() };
    });
    expectLength(out.plaintext, 100);
    // One-time keys are consumed; the calibration may run past 1000 setups, so keep the original store.
    void out.prekeys;
  });
  prekeyBytes = PreKeyStore.generate(bob, { oneTimePreKeys: 1, kemPreKeys: 1 }, base).serialize();
  const fresh = PreKeyStore.deserialize(prekeyBytes, bob, base);
  const ab = SessionRecord.initiate(alice, fresh.bundle(), { provider: base });
  const ba = new SessionRecord(base);
  ba.decrypt(ab.encrypt(payload(16)), { device: bob, prekeys: fresh });
  ab.decrypt(ba.encrypt(payload(16)));
  const records = [ab.serialize(), ba.serialize()];
  let turn = 0;
  const pingPong = await time(async () => {
    const [from, to] = turn++ % 2 === 0 ? [0, 1] : [1, 0];
    const sent = await run((p) => {
      const r = SessionRecord.deserialize(records[from] as Uint8Array, p);
      return { message: r.encrypt(small), record: r.serialize() };
    });
    records[from] = sent.record;
    const got = await run((p) => {
      const r = SessionRecord.deserialize(records[to] as Uint8Array, p);
      return { plaintext: r.decrypt(sent.message).plaintext, record: r.serialize() };
    });
    records[to] = got.record;
    expectLength(got.plaintext, 100);
  });
  return [
    { op: 'setup, stored records', variant, micros: setup },
    { op: 'ping-pong, stored records', variant, micros: pingPong },
  ];
}

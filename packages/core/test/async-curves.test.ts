/**
 * runWithAsyncCurves (src/crypto/async-curves.ts): the unchanged session
 * layer on asynchronous WebCrypto curves. The bar is byte identity: with the
 * same random bytes, a conversation run through the driver produces exactly
 * the ciphertexts and records that the synchronous noble backend produces,
 * and every refusal leaves the record as it was. Node's own WebCrypto has
 * X25519 and Ed25519, so this runs here; webcrypto-browser.test.ts runs the
 * conversation in Chromium.
 */
import { describe, expect, it } from 'vitest';
import {
  type AsyncCurveStats,
  type AsyncCurves,
  MAX_ASYNC_CURVE_OPS,
  prepareAsyncCurves,
  runWithAsyncCurves,
} from '../src/crypto/async-curves.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { webCryptoCurves } from '../src/crypto/webcrypto.ts';
import { SessionRecord, cryptoProvider, toHex } from '../src/index.ts';
import { deterministicProvider } from '../src/testing.ts';
import { conversation } from './support/async-conversation.ts';
import { party, str, text } from './support/parties.ts';

describe('runWithAsyncCurves: the session layer on asynchronous curves', async () => {
  const curves = (await webCryptoCurves()) as AsyncCurves;

  it('gives byte-identical ciphertexts and records to the synchronous backend with the same randomness', async () => {
    expect(curves).not.toBeNull();
    // One random stream for the whole conversation on each side, as a client has one CSPRNG.
    const base = deterministicProvider(nobleBackend, 'conv/run');
    const reference = deterministicProvider(nobleBackend, 'conv/run');
    const syncShared = await conversation(async (step) => step(reference), 'conv');
    const stats: AsyncCurveStats[] = [];
    const viaAsync = await conversation((step) => runWithAsyncCurves(curves, step, { base, onStats: (s) => stats.push(s) }), 'conv');
    expect(viaAsync.log).toEqual(syncShared.log);
    // A send logs its ciphertext; a receive logs the plaintext and the record: 9 exchanges and 3 out-of-order.
    expect(viaAsync.log.length).toBe(9 * 3 + 3 + 3 * 2);
    // The curve work really went to WebCrypto: a ratchet step awaits its X25519s.
    const awaited = stats.reduce((n, s) => n + s.asyncOps, 0);
    expect(awaited).toBeGreaterThan(20);
    expect(stats.every((s) => s.runs === s.asyncOps + 1 && s.syncOps === 0)).toBe(true);
  });

  it('a refused message throws the same typed error and leaves the record byte-identical', async () => {
    const setup = deterministicProvider(nobleBackend, 'refuse');
    const alice = party(setup);
    const bob = party(setup);
    const a = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider: setup });
    const b = new SessionRecord(setup);
    b.decrypt(a.encrypt(text('first')), { device: bob.device, prekeys: bob.prekeys });
    a.decrypt(b.encrypt(text('reply')));
    const good = a.encrypt(text('next'));
    const before = b.serialize();
    const tampered = Uint8Array.from(good);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    await expect(runWithAsyncCurves(curves, (p) => SessionRecord.deserialize(before, p).decrypt(tampered))).rejects.toMatchObject({
      code: 'DECRYPT_FAILED',
    });
    // The good message still opens on the untouched record, through the driver.
    const out = await runWithAsyncCurves(curves, (p) => str(SessionRecord.deserialize(before, p).decrypt(good).plaintext));
    expect(out).toBe('next');
    expect(toHex(b.serialize())).toBe(toHex(before));
  });

  it('a run that swallows the interruption cannot reach a result: it is run again', async () => {
    const p0 = deterministicProvider(nobleBackend, 'swallow');
    const priv = p0.random(32);
    const pub = nobleBackend.x25519PublicKey(p0.random(32));
    const expected = nobleBackend.x25519(priv, pub);
    let attempts = 0;
    let reached = 0;
    const out = await runWithAsyncCurves(curves, (p) => {
      attempts++;
      let shared: Uint8Array;
      try {
        shared = p.backend.x25519(priv, pub);
      } catch {
        // Code that turns any failure into a default must not turn the interruption into one.
        shared = new Uint8Array(32);
      }
      const digest = p.backend.sha256(shared);
      // Only the run whose curve answers were all real gets past its next primitive call.
      reached++;
      return toHex(digest);
    });
    expect(reached).toBe(1);
    expect(out).toBe(toHex(nobleBackend.sha256(expected)));
    expect(attempts).toBe(2);
  });

  it('computes ML-KEM once per call, however many times the operation is replayed', async () => {
    const setup = deterministicProvider(nobleBackend, 'kem-once');
    const alice = party(setup);
    const bob = party(setup);
    const first = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider: setup }).encrypt(text('first'));
    let decapsulations = 0;
    const backend = {
      ...nobleBackend,
      mlkemDecapsulate: (ct: Uint8Array, sk: Uint8Array) => {
        decapsulations++;
        return nobleBackend.mlkemDecapsulate(ct, sk);
      },
    };
    const stats: AsyncCurveStats[] = [];
    const out = await runWithAsyncCurves(
      curves,
      (p) => str(new SessionRecord(p).decrypt(first, { device: bob.device, prekeys: bob.prekeys }).plaintext),
      { base: cryptoProvider(backend, setup.random), onStats: (s) => stats.push(s) },
    );
    expect(out).toBe('first');
    expect(stats[0]?.runs).toBeGreaterThan(3);
    expect(decapsulations).toBe(1);
  });

  it('past MAX_ASYNC_CURVE_OPS the base backend answers synchronously (runs stay bounded)', async () => {
    const p0 = deterministicProvider(nobleBackend, 'bound');
    const keys = Array.from({ length: 12 }, () => p0.random(32));
    const stats: AsyncCurveStats[] = [];
    const pubs = await runWithAsyncCurves(curves, (p) => keys.map((k) => toHex(p.backend.x25519PublicKey(k))), {
      maxAsyncOps: 5,
      onStats: (s) => stats.push(s),
    });
    expect(pubs).toEqual(keys.map((k) => toHex(nobleBackend.x25519PublicKey(k))));
    expect(stats[0]).toEqual({ runs: 6, asyncOps: 5, syncOps: 7 });
    expect(MAX_ASYNC_CURVE_OPS).toBeGreaterThanOrEqual(16);
  });

  it('refuses an operation that is not deterministic (a programming error, not silent)', async () => {
    let n = 0;
    const p0 = deterministicProvider(nobleBackend, 'nondet');
    const keys = [p0.random(32), p0.random(32)];
    await expect(runWithAsyncCurves(curves, (p) => p.backend.x25519PublicKey(keys[n++ % 2] as Uint8Array))).rejects.toThrow(
      /not deterministic/,
    );
  });

  it('keeps the synchronous backends refusals for torsioned Ed25519 keys and bad lengths', async () => {
    const p0 = deterministicProvider(nobleBackend, 'verify');
    const seed = p0.random(32);
    const pub = nobleBackend.ed25519PublicKey(seed);
    const sig = nobleBackend.ed25519Sign(seed, text('m'));
    const results = await runWithAsyncCurves(curves, (p) => [
      p.backend.ed25519Verify(pub, text('m'), sig),
      p.backend.ed25519Verify(pub, text('other'), sig),
      p.backend.ed25519Verify(pub.subarray(1), text('m'), sig),
      p.backend.ed25519Verify(pub, text('m'), sig.subarray(1)),
    ]);
    expect(results).toEqual([true, false, false, false]);
  });

  describe('prepareAsyncCurves: answers computed ahead of a synchronous transaction', () => {
    /** noble, counting the curve operations it is asked for. */
    function counting(): { backend: CryptoBackend; curveCalls: () => number } {
      let n = 0;
      const count =
        <A extends unknown[], R>(f: (...a: A) => R) =>
        (...a: A): R => {
          n++;
          return f(...a);
        };
      const backend: CryptoBackend = {
        ...nobleBackend,
        x25519: count(nobleBackend.x25519),
        x25519PublicKey: count(nobleBackend.x25519PublicKey),
        ed25519Sign: count(nobleBackend.ed25519Sign),
        ed25519Verify: count(nobleBackend.ed25519Verify),
        ed25519PublicKey: count(nobleBackend.ed25519PublicKey),
      };
      return { backend, curveCalls: () => n };
    }

    it('the transaction run gets the same bytes as a synchronous run, with no curve operation left to compute', async () => {
      const reference = deterministicProvider(nobleBackend, 'prep/run');
      const syncShared = await conversation(async (step) => step(reference), 'prep');
      const { backend, curveCalls } = counting();
      const base = cryptoProvider(backend, deterministicProvider(nobleBackend, 'prep/run').random);
      let inTransactions = 0;
      const prepared = await conversation(async (step) => {
        const ready = await prepareAsyncCurves(curves, step, { base });
        const before = curveCalls();
        try {
          return step(ready.provider);
        } finally {
          inTransactions += curveCalls() - before;
          ready.wipe();
        }
      }, 'prep');
      expect(prepared.log).toEqual(syncShared.log);
      expect(inTransactions).toBe(0);
    });

    it('when the state changed after preparing, the transaction is still right (the rest runs on the base backend)', async () => {
      const setup = deterministicProvider(nobleBackend, 'diverge');
      const alice = party(setup);
      const bob = party(setup);
      const a = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider: setup });
      const b = new SessionRecord(setup);
      b.decrypt(a.encrypt(text('first')), { device: bob.device, prekeys: bob.prekeys });
      const reply1 = b.encrypt(text('reply 1'));
      const aBefore = a.serialize();
      // Prepared against Alice's record before she read reply 1 ...
      const ready = await prepareAsyncCurves(curves, (p) => SessionRecord.deserialize(aBefore, p).decrypt(reply1), { base: setup });
      expect(ready.stats.asyncOps).toBeGreaterThan(0);
      // ... but a second reply, on a new chain of Bob's, is what the transaction decrypts.
      a.decrypt(b.encrypt(text('x')));
      b.decrypt(a.encrypt(text('y')));
      const reply2 = b.encrypt(text('reply 2'));
      const aNow = a.serialize();
      const viaPrepared = SessionRecord.deserialize(aNow, ready.provider);
      expect(str(viaPrepared.decrypt(reply2).plaintext)).toBe('reply 2');
      const plain = SessionRecord.deserialize(aNow, setup);
      expect(str(plain.decrypt(reply2).plaintext)).toBe('reply 2');
      ready.wipe();
    });

    it('hands each prepared random draw out once', async () => {
      const base = deterministicProvider(nobleBackend, 'once');
      const keyOf = (p: typeof base) => toHex(p.backend.x25519PublicKey(p.random(32)));
      const ready = await prepareAsyncCurves(curves, keyOf, { base });
      const first = keyOf(ready.provider);
      const second = keyOf(ready.provider);
      expect(second).not.toBe(first);
      ready.wipe();
      expect(keyOf(ready.provider)).not.toBe(first);
    });

    it("a failing operation still prepares (its error is the transaction run's to report)", async () => {
      const ready = await prepareAsyncCurves(curves, (p) => {
        p.backend.x25519PublicKey(new Uint8Array(32).fill(9));
        throw new Error('refused');
      });
      expect(ready.stats.asyncOps).toBe(1);
      ready.wipe();
    });
  });
});

/**
 * A short conversation (first contact, ping-pong, a one-way run delivered
 * out of order) written as steps over stored records, so that it runs on a
 * synchronous provider or through runWithAsyncCurves alike; returns a log
 * of every ciphertext, plaintext and record. Used by async-curves.test.ts
 * in Node and by browser/webcrypto-entry.ts in Chromium.
 */
import { nobleBackend } from '../../src/crypto/noble.ts';
import { Account, type CryptoProvider, PreKeyStore, SessionRecord, toHex } from '../../src/index.ts';
import { deterministicProvider } from '../../src/testing.ts';

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** As parties.ts's `party`, which this module cannot import: it pulls in node:crypto, and this also runs in Chromium. */
function party(provider: CryptoProvider) {
  const device = Account.generate(provider).createDevice(1, provider);
  return { device, prekeys: PreKeyStore.generate(device, { oneTimePreKeys: 3, kemPreKeys: 2 }, provider) };
}

function check(actual: string, expected: string): void {
  if (actual !== expected) throw new Error(`conversation: got "${actual}", expected "${expected}"`);
}

export type Step<T> = (p: CryptoProvider) => T;

/** A conversation as a list of steps over serialized records, so it can run on either provider. */
export async function conversation(run: <T>(step: Step<T>) => Promise<T>, seed: string) {
  const setup = deterministicProvider(nobleBackend, `${seed}/parties`);
  const alice = party(setup);
  const bob = party(setup);
  const log: string[] = [];
  let bobPrekeys = bob.prekeys.serialize();
  let a = await run((p) => SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider: p }).serialize());
  let b = new SessionRecord(setup).serialize();
  const send = async (from: 'a' | 'b', body: string) => {
    const out = await run((p) => {
      const r = SessionRecord.deserialize(from === 'a' ? a : b, p);
      const ct = r.encrypt(text(body));
      return { ct, record: r.serialize() };
    });
    if (from === 'a') a = out.record;
    else b = out.record;
    log.push(toHex(out.ct));
    return out.ct;
  };
  const receive = async (to: 'a' | 'b', ct: Uint8Array) => {
    const out = await run((p) => {
      const r = SessionRecord.deserialize(to === 'a' ? a : b, p);
      const prekeys = PreKeyStore.deserialize(bobPrekeys, bob.device, p);
      const res = r.decrypt(ct, to === 'b' ? { device: bob.device, prekeys } : {});
      return { plaintext: str(res.plaintext), record: r.serialize(), prekeys: prekeys.serialize() };
    });
    if (to === 'a') a = out.record;
    else {
      b = out.record;
      bobPrekeys = out.prekeys;
    }
    log.push(out.plaintext, toHex(out.record));
    return out.plaintext;
  };
  // First contact, a ping-pong with a DH step per message, a run in one direction, out of order.
  check(await receive('b', await send('a', 'hello')), 'hello');
  for (let i = 0; i < 4; i++) {
    check(await receive('a', await send('b', `b${i}`)), `b${i}`);
    check(await receive('b', await send('a', `a${i}`)), `a${i}`);
  }
  const run3 = [await send('a', 'x0'), await send('a', 'x1'), await send('a', 'x2')];
  for (const i of [2, 0, 1]) check(await receive('b', run3[i] as Uint8Array), `x${i}`);
  return { log, records: { a, b } };
}

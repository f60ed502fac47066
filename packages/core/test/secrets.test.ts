// Secrets never reach toString, JSON.stringify, util.inspect (console.log) or error messages.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Account, Ed25519KeyPair, ParleyError, SessionRecord, X25519KeyPair, cryptoProvider, decodeCbor, toHex } from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { establish, party, text } from './support/parties.ts';

const provider = cryptoProvider(nodeBackend);

/** Every 32-byte byte string inside a stored record: chain keys, root keys, private keys. */
function secretsIn(record: Uint8Array): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (v instanceof Uint8Array && v.length >= 16) out.push(toHex(v));
    else if (Array.isArray(v)) v.forEach(walk);
  };
  walk(decodeCbor(record, 'record', 1 << 24));
  return out;
}

function renderings(x: unknown): string {
  return [String(x), JSON.stringify(x), inspect(x, { depth: 10, showHidden: true }), inspect({ nested: x }, { depth: 10 })].join('\n');
}

function forms(hex: string): string[] {
  const bytes = Buffer.from(hex, 'hex');
  return [hex, bytes.toString('base64'), bytes.toString('base64url'), Array.from(bytes.subarray(0, 8)).join(',')];
}

describe('secret redaction', () => {
  it('key pairs, accounts, devices, prekey stores and session records print no key bytes', () => {
    const alice = party(provider);
    const bob = party(provider);
    const { a } = establish(alice, bob);
    const x = X25519KeyPair.generate(provider);
    const e = Ed25519KeyPair.generate(provider);
    const secrets = [
      toHex(x.privateKey),
      toHex(e.seed),
      ...secretsIn(alice.account.serialize()),
      ...secretsIn(alice.device.serialize()),
      ...secretsIn(bob.prekeys.serialize()),
      ...secretsIn(a.serialize()),
    ];
    const objects = [x, e, alice.account, alice.device, bob.prekeys, a];
    const printed = objects.map(renderings).join('\n');
    for (const s of secrets) for (const f of forms(s)) expect(printed).not.toContain(f);
    expect(String(alice.account)).toContain('redacted');
  });

  it('errors from failed decryption carry codes and counters, not key or plaintext bytes', () => {
    const { a, b } = establish(party(provider), party(provider));
    const m = a.encrypt(text('very secret plaintext'));
    b.decrypt(m);
    const secrets = secretsIn(b.serialize());
    let err: unknown;
    try {
      b.decrypt(m);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParleyError);
    const printed = renderings(err) + JSON.stringify((err as ParleyError).details);
    expect(printed).not.toContain('very secret plaintext');
    for (const s of secrets) expect(printed).not.toContain(s);
  });

  it('an Account restored from bytes still redacts', () => {
    const acc = Account.deserialize(Account.generate(provider).serialize(), provider);
    expect(renderings(acc)).not.toMatch(/[0-9a-f]{64}/);
    expect(renderings(new SessionRecord(provider))).toContain('redacted');
  });
});

describe('node backend key cache', () => {
  it('never answers with a stale key when a key buffer is overwritten in place', () => {
    const k = nodeBackend.randomBytes(32);
    const first = nodeBackend.x25519PublicKey(k);
    k.set(nodeBackend.randomBytes(32));
    const second = nodeBackend.x25519PublicKey(k);
    expect(toHex(second)).not.toBe(toHex(first));
    expect(toHex(second)).toBe(toHex(nodeBackend.x25519PublicKey(k.slice())));
  });

  it('reports wrong key lengths as misuse, not as a weak key', () => {
    expect(() => nodeBackend.x25519(new Uint8Array(31), new Uint8Array(32))).toThrow(RangeError);
  });
});

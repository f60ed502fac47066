/**
 * Ratchet v2 figures (spec/13-ratchet-v2.md §5): the cost of a forged message against a full
 * record (current + 40 archived v2 sessions, each with 5 receiving chains and 8 skipped groups:
 * 574 header opens), and ping-pong time and bytes per message for v2 (as wired today: without PQ
 * chunks) next to v1. Standalone, not yet a suite row (formats-v2 §15 step 13):
 *   NODE_OPTIONS=--conditions=parley:source node --import tsx bench/src/parley/ratchet-v2.ts
 */
import { performance } from 'node:perf_hooks';
import {
  Account,
  type CborValue,
  type CryptoBackend,
  type CryptoProvider,
  PreKeyStore,
  SessionRecord,
  cryptoProvider,
  decodeCbor,
  decodeMessage,
  encodeCbor,
  initiateV2,
  limits,
  nobleBackend,
  respondV2,
} from '@parley/core';
import { nodeBackend } from '../../../packages/core/src/crypto/node.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

interface Sent {
  message: Uint8Array;
  frankingTag: Uint8Array;
}

function send(r: SessionRecord, text: string): Sent {
  const out = r.encryptWithTag(utf8(text));
  return { message: out.message, frankingTag: out.frankingTag as Uint8Array };
}

/** A v2 session pair, with a shared secret standing in for the v2 handshake (not measured here). */
function pairV2(p: CryptoProvider): { a: SessionRecord; b: SessionRecord } {
  const alice = Account.generate(p).createDevice(1, p);
  const bob = Account.generate(p).createDevice(2, p);
  const prekeys = PreKeyStore.generate(bob, { oneTimePreKeys: 1, kemPreKeys: 1 }, p);
  const sharedSecret = p.random(32);
  const associatedData = p.random(32);
  const spkPrivate = p.random(32);
  const spk = { privateKey: spkPrivate, publicKey: p.backend.x25519PublicKey(spkPrivate) };
  const baseKey = p.backend.x25519PublicKey(p.random(32));
  const versions = { local: [1, 2], remote: [1, 2] };
  const a = new SessionRecord(p);
  a.startSessionV2({
    remoteCertificate: bob.certificate,
    localCertificate: alice.certificate,
    ratchet: initiateV2(p, { sharedSecret, associatedData, theirRatchetKey: spk.publicKey }),
    baseKey,
    use: { baseKey, signedPreKeyId: 1, oneTimePreKeyId: null, kemPreKeyId: 1 },
    kemCiphertext: new Uint8Array(1088),
    versions,
  });
  const first = send(a, 'hi');
  const decoded = decodeMessage(first.message);
  if (decoded.type !== 'prekey2') throw new Error('expected a PreKeyMessageV2');
  const b = new SessionRecord(p);
  b.acceptSessionV2(
    decoded,
    {
      ratchet: respondV2(p, { sharedSecret, associatedData, ownSignedPreKey: spk }),
      localCertificate: bob.certificate,
      versions,
      frankingTag: first.frankingTag,
    },
    prekeys,
  );
  const reply = send(b, 'reply');
  a.decrypt(reply.message, { frankingTag: reply.frankingTag });
  return { a, b };
}

function timeIt(n: number, fn: () => void): number {
  for (let i = 0; i < Math.min(10, n); i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return (performance.now() - t0) / n;
}

function forgedHeaderCost(backend: CryptoBackend): number {
  const p = cryptoProvider(backend);
  const { a, b } = pairV2(p);
  // Bob ends with 5 receiving chains and 8 skipped groups of dropped chains: 14 distinct header keys.
  for (let turn = 0; turn < 13; turn++) {
    if (turn < 8) send(a, 'lost');
    const m = send(a, `a${turn}`);
    b.decrypt(m.message, { frankingTag: m.frankingTag });
    const r = send(b, `b${turn}`);
    a.decrypt(r.message, { frankingTag: r.frankingTag });
  }
  const f = decodeCbor(b.serialize(), 'r', limits.MAX_RECORD_BYTES) as CborValue[];
  f[3] = Array.from({ length: limits.MAX_ARCHIVED_SESSIONS }, () => f[2] as CborValue);
  const full = SessionRecord.deserialize(encodeCbor(f), p);
  const forged = encodeCbor([2, 2, p.random(60), p.random(200)]);
  const tag = p.random(32);
  return timeIt(50, () => {
    try {
      full.decrypt(forged, { frankingTag: tag });
    } catch {
      // HEADER_DECRYPT_FAILED after 574 opens
    }
  });
}

function pingPong(backend: CryptoBackend, version: 1 | 2): { ms: number; bytes: number } {
  const p = cryptoProvider(backend);
  let bytes = 0;
  let count = 0;
  let a: SessionRecord;
  let b: SessionRecord;
  if (version === 2) ({ a, b } = pairV2(p));
  else {
    const alice = Account.generate(p).createDevice(1, p);
    const bob = Account.generate(p).createDevice(2, p);
    const prekeys = PreKeyStore.generate(bob, { oneTimePreKeys: 1, kemPreKeys: 1 }, p);
    a = SessionRecord.initiate(alice, prekeys.bundle(), { provider: p });
    b = new SessionRecord(p);
    b.decrypt(a.encrypt(utf8('hi')), { device: bob, prekeys });
    a.decrypt(b.encrypt(utf8('reply')));
  }
  const step = (from: SessionRecord, to: SessionRecord) => {
    const out = from.encryptWithTag(utf8('hi'));
    bytes += out.message.length;
    count++;
    to.decrypt(out.message, out.frankingTag ? { frankingTag: out.frankingTag } : {});
  };
  const ms = timeIt(200, () => {
    step(a, b);
    step(b, a);
  });
  return { ms: ms / 2, bytes: bytes / count };
}

for (const backend of [nodeBackend, nobleBackend]) {
  const forged = forgedHeaderCost(backend);
  console.log(`${backend.name}: forged message, full record (574 header opens): ${forged.toFixed(3)} ms`);
  for (const v of [1, 2] as const) {
    const r = pingPong(backend, v);
    console.log(`${backend.name}: ping-pong v${v}: ${r.ms.toFixed(3)} ms per message (send + receive), ${r.bytes} bytes per "hi"`);
  }
}

/**
 * One session's state and its stored form. spec/05-wire-format.md §6.5,
 * spec/13-ratchet-v2.md §8 (record version 2).
 *
 * In a record of version 2 every state starts with its version:
 *   SessionState (v1 in a v2 record) = [1, ...the seven v1 fields below]
 *   SessionState (v2)                = see state-v2.ts
 * A record of version 1 holds v1 states without the leading version.
 *
 *   SessionState v1 fields = [remoteCertificate, associatedData, baseKey, initiator,
 *                   ratchet, pendingPreKey / null, preKeyDigest / null]
 *   ratchet      = [rootKey, sendingPrivate, sendingPublic, [chainKey, counter] / null,
 *                   previousCounter, [[ratchetKey, chainKey, counter]...],
 *                   [[ratchetKey, counter, key, nonce]...]]
 *   pendingPreKey = [localCertificate, signedPreKeyId, oneTimePreKeyId / null,
 *                    kemPreKeyId, kemCiphertext]
 */
import { fromHex } from '../bytes.ts';
import { readArray, readBool, readBytes, readOptional, readUint } from '../codec/fields.ts';
import type { CborValue } from '../codec/cbor.ts';
import { MLKEM768_CIPHERTEXT_BYTES } from '../crypto/backend.ts';
import { type DeviceCertificate, certificateFromCbor, certificateToCbor } from '../keys/certificate.ts';
import { MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS } from '../limits.ts';
import type { MessageKeys } from '../ratchet/kdf.ts';
import { type RatchetState, type ReceivingChain, skippedKeyId } from '../ratchet/ratchet.ts';

/** What the initiator repeats in every message until the responder answers. */
export interface PendingPreKey {
  readonly localCertificate: DeviceCertificate;
  readonly signedPreKeyId: number;
  readonly oneTimePreKeyId: number | null;
  readonly kemPreKeyId: number;
  readonly kemCiphertext: Uint8Array;
}

export interface SessionStateV1 {
  readonly version: 1;
  readonly remoteCertificate: DeviceCertificate;
  readonly associatedData: Uint8Array;
  /** The initiator's ephemeral key EK_A: names the session. */
  readonly baseKey: Uint8Array;
  readonly initiator: boolean;
  readonly ratchet: RatchetState;
  readonly pendingPreKey: PendingPreKey | null;
  /** Responder only: SHA-256 of the PreKeyMessage handshake fields that created this session. */
  readonly preKeyDigest: Uint8Array | null;
}

/** The v1 fields of a v1 state (in a v2 record they follow the version). */
export function sessionToCbor(s: SessionStateV1): CborValue[] {
  const r = s.ratchet;
  const skipped: CborValue[] = [];
  for (const [id, mk] of r.skipped) {
    const [hex, counter] = id.split(':') as [string, string];
    skipped.push([fromHex(hex), Number(counter), mk.key, mk.nonce]);
  }
  return [
    certificateToCbor(s.remoteCertificate),
    s.associatedData,
    s.baseKey,
    s.initiator,
    [
      r.rootKey,
      r.sendingRatchetKey.privateKey,
      r.sendingRatchetKey.publicKey,
      r.sendingChain ? [r.sendingChain.chainKey, r.sendingChain.counter] : null,
      r.previousCounter,
      r.receivingChains.map((c) => [c.ratchetKey, c.chainKey, c.counter]),
      skipped,
    ],
    pendingToCbor(s.pendingPreKey),
    s.preKeyDigest,
  ];
}

/** Reads the seven v1 fields (a record v1 state, or a v2 record's v1 state without its version). */
export function sessionFromCbor(v: unknown): SessionStateV1 {
  const f = readArray(v, 'SessionState', 7);
  const r = readArray(f[4], 'RatchetState', 7);
  const receivingChains: ReceivingChain[] = readArray(r[5], 'receivingChains', { min: 0, max: MAX_RECEIVER_CHAINS }).map((c) => {
    const cf = readArray(c, 'ReceivingChain', 3);
    return {
      ratchetKey: readBytes(cf[0], 'ratchetKey', 32),
      chainKey: readBytes(cf[1], 'chainKey', 32),
      counter: readUint(cf[2], 'counter'),
    };
  });
  const skipped = new Map<string, MessageKeys>();
  for (const e of readArray(r[6], 'skipped', { min: 0, max: MAX_SKIPPED_KEYS })) {
    const sf = readArray(e, 'SkippedKey', 4);
    skipped.set(skippedKeyId(readBytes(sf[0], 'ratchetKey', 32), readUint(sf[1], 'counter')), {
      key: readBytes(sf[2], 'key', 32),
      nonce: readBytes(sf[3], 'nonce', 12),
    });
  }
  const ratchet: RatchetState = {
    rootKey: readBytes(r[0], 'rootKey', 32),
    sendingRatchetKey: { privateKey: readBytes(r[1], 'sendingPrivate', 32), publicKey: readBytes(r[2], 'sendingPublic', 32) },
    sendingChain: readOptional(r[3], (c) => {
      const cf = readArray(c, 'SendingChain', 2);
      return { chainKey: readBytes(cf[0], 'chainKey', 32), counter: readUint(cf[1], 'counter') };
    }),
    previousCounter: readUint(r[4], 'previousCounter'),
    receivingChains,
    skipped,
  };
  return {
    version: 1,
    remoteCertificate: certificateFromCbor(f[0]),
    associatedData: readBytes(f[1], 'associatedData', 32),
    baseKey: readBytes(f[2], 'baseKey', 32),
    initiator: readBool(f[3], 'initiator'),
    ratchet,
    pendingPreKey: pendingFromCbor(f[5]),
    preKeyDigest: readOptional(f[6], (d) => readBytes(d, 'preKeyDigest', 32)),
  };
}

export function pendingToCbor(p: PendingPreKey | null): CborValue {
  return p ? [certificateToCbor(p.localCertificate), p.signedPreKeyId, p.oneTimePreKeyId, p.kemPreKeyId, p.kemCiphertext] : null;
}

export function pendingFromCbor(v: unknown): PendingPreKey | null {
  return readOptional(v, (pv) => {
    const pf = readArray(pv, 'PendingPreKey', 5);
    return {
      localCertificate: certificateFromCbor(pf[0]),
      signedPreKeyId: readUint(pf[1], 'signedPreKeyId'),
      oneTimePreKeyId: readOptional(pf[2], (x) => readUint(x, 'oneTimePreKeyId')),
      kemPreKeyId: readUint(pf[3], 'kemPreKeyId'),
      kemCiphertext: readBytes(pf[4], 'kemCiphertext', MLKEM768_CIPHERTEXT_BYTES),
    };
  });
}

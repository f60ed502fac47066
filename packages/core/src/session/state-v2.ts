/**
 * A version-2 session's state and its stored form. spec/13-ratchet-v2.md §8
 * (spec/design/formats-v2.md §3.4, §4.5).
 *
 *   SessionStateV2 = [2, remoteCertificate, associatedData (AD2), baseKey, initiator,
 *                     ratchet, pendingPreKey / null, preKeyDigest / null,
 *                     localSender: [accountKey, deviceId], versionsLocal, versionsRemote]
 *   ratchet        = [rootKey, rootEpoch, sendingPrivate, sendingPublic,
 *                     [chainKey, counter, epoch] / null, HKs / null, NHKs, NHKr, previousCounter,
 *                     [[ratchetKey, chainKey, counter, epoch, HKr]...],
 *                     [[HK, ratchetKey, [counter...], keys: bstr (32-byte key || 12-byte nonce per counter)]...],
 *                     pq]
 *
 * Skipped keys are packed per group (one byte string), which keeps the
 * record's nesting shallow and its size close to v1's.
 */
import { concatBytes } from '../bytes.ts';
import type { CborValue } from '../codec/cbor.ts';
import { readArray, readBool, readBytes, readOptional, readUint } from '../codec/fields.ts';
import { fail } from '../errors.ts';
import type { FrankingSender } from '../franking/tag.ts';
import { type DeviceCertificate, certificateFromCbor, certificateToCbor } from '../keys/certificate.ts';
import { MAX_DEVICE_ID, MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS } from '../limits.ts';
import { MAX_MESSAGE_COUNTER } from '../ratchet/header.ts';
import type { MessageKeys } from '../ratchet/kdf.ts';
import { MAX_PQ_EPOCH } from '../ratchet/v2/header.ts';
import { MAX_SKIPPED_HEADER_KEYS } from '../ratchet/v2/limits.ts';
import type { PqPort } from '../ratchet/v2/pq-port.ts';
import type { RatchetStateV2, ReceivingChainV2, SkippedGroup } from '../ratchet/v2/state.ts';
import { type PendingPreKey, pendingFromCbor, pendingToCbor } from './state.ts';

/** Most entries of a signed version set (formats-v2 §3.1). */
export const MAX_VERSIONS = 8;
const SKIPPED_ENTRY_BYTES = 44;

export interface SessionStateV2 {
  readonly version: 2;
  readonly remoteCertificate: DeviceCertificate;
  /** AD2 (formats-v2 §3.2). */
  readonly associatedData: Uint8Array;
  readonly baseKey: Uint8Array;
  readonly initiator: boolean;
  readonly ratchet: RatchetStateV2;
  readonly pendingPreKey: PendingPreKey | null;
  readonly preKeyDigest: Uint8Array | null;
  /** This device, as the sender its franking tags commit to. */
  readonly localSender: FrankingSender;
  /** The two signed version sets bound into AD2: ours and the peer's. */
  readonly versions: { readonly local: readonly number[]; readonly remote: readonly number[] };
}

export function sessionV2ToCbor(s: SessionStateV2, pq: PqPort): CborValue[] {
  const r = s.ratchet;
  return [
    2,
    certificateToCbor(s.remoteCertificate),
    s.associatedData,
    s.baseKey,
    s.initiator,
    [
      r.rootKey,
      r.rootEpoch,
      r.sendingRatchetKey.privateKey,
      r.sendingRatchetKey.publicKey,
      r.sendingChain ? [r.sendingChain.chainKey, r.sendingChain.counter, r.sendingChain.epoch] : null,
      r.sendingHeaderKey,
      r.nextSendingHeaderKey,
      r.nextReceivingHeaderKey,
      r.previousCounter,
      r.receivingChains.map((c) => [c.ratchetKey, c.chainKey, c.counter, c.epoch, c.headerKey]),
      r.skipped.map((g) => {
        const counters = [...g.keys.keys()];
        const packed = concatBytes(...[...g.keys.values()].flatMap((mk) => [mk.key, mk.nonce]));
        return [g.headerKey, g.ratchetKey, counters, packed];
      }),
      pq.toStored(r.pq),
    ],
    pendingToCbor(s.pendingPreKey),
    s.preKeyDigest,
    [s.localSender.accountKey, s.localSender.deviceId],
    [...s.versions.local],
    [...s.versions.remote],
  ];
}

/** Reads a stored v2 state; every field and bound is checked (MALFORMED / OVERSIZED, turned into BAD_RECORD by the record). */
export function sessionV2FromCbor(v: unknown, pq: PqPort): SessionStateV2 {
  const f = readArray(v, 'SessionStateV2', 11);
  if (f[0] !== 2) fail('MALFORMED', 'SessionStateV2: version must be 2');
  const r = readArray(f[5], 'RatchetStateV2', 12);
  const epoch = (x: unknown, field: string) => readUint(x, field, MAX_PQ_EPOCH);
  const counter = (x: unknown, field: string) => readUint(x, field, MAX_MESSAGE_COUNTER + 1);
  const receivingChains: ReceivingChainV2[] = readArray(r[9], 'receivingChains', { min: 0, max: MAX_RECEIVER_CHAINS }).map((c) => {
    const cf = readArray(c, 'ReceivingChainV2', 5);
    return {
      ratchetKey: readBytes(cf[0], 'ratchetKey', 32),
      chainKey: readBytes(cf[1], 'chainKey', 32),
      counter: counter(cf[2], 'counter'),
      epoch: epoch(cf[3], 'epoch'),
      headerKey: readBytes(cf[4], 'headerKey', 32),
    };
  });
  let total = 0;
  const skipped: SkippedGroup[] = readArray(r[10], 'skipped', { min: 0, max: MAX_SKIPPED_HEADER_KEYS }).map((g) => {
    const gf = readArray(g, 'SkippedGroup', 4);
    const counters = readArray(gf[2], 'skipped.counters', { min: 1, max: MAX_SKIPPED_KEYS });
    total += counters.length;
    if (total > MAX_SKIPPED_KEYS) fail('OVERSIZED', `skipped: more than ${MAX_SKIPPED_KEYS} keys`);
    const packed = readBytes(gf[3], 'skipped.keys', counters.length * SKIPPED_ENTRY_BYTES);
    const keys = new Map<number, MessageKeys>();
    counters.forEach((c, i) => {
      const n = readUint(c, 'skipped.counter', MAX_MESSAGE_COUNTER);
      if (keys.has(n)) fail('MALFORMED', 'skipped: repeated counter in a group');
      const at = i * SKIPPED_ENTRY_BYTES;
      keys.set(n, { key: packed.slice(at, at + 32), nonce: packed.slice(at + 32, at + SKIPPED_ENTRY_BYTES) });
    });
    return { headerKey: readBytes(gf[0], 'headerKey', 32), ratchetKey: readBytes(gf[1], 'ratchetKey', 32), keys };
  });
  const ratchet: RatchetStateV2 = {
    rootKey: readBytes(r[0], 'rootKey', 32),
    rootEpoch: epoch(r[1], 'rootEpoch'),
    sendingRatchetKey: { privateKey: readBytes(r[2], 'sendingPrivate', 32), publicKey: readBytes(r[3], 'sendingPublic', 32) },
    sendingChain: readOptional(r[4], (c) => {
      const cf = readArray(c, 'SendingChainV2', 3);
      return { chainKey: readBytes(cf[0], 'chainKey', 32), counter: counter(cf[1], 'counter'), epoch: epoch(cf[2], 'epoch') };
    }),
    sendingHeaderKey: readOptional(r[5], (x) => readBytes(x, 'sendingHeaderKey', 32)),
    nextSendingHeaderKey: readBytes(r[6], 'nextSendingHeaderKey', 32),
    nextReceivingHeaderKey: readBytes(r[7], 'nextReceivingHeaderKey', 32),
    previousCounter: counter(r[8], 'previousCounter'),
    receivingChains,
    skipped,
    pq: pq.checkStored(r[11]),
  };
  if ((ratchet.sendingChain === null) !== (ratchet.sendingHeaderKey === null)) {
    fail('MALFORMED', 'RatchetStateV2: a sending chain needs its header key and the reverse');
  }
  const sender = readArray(f[8], 'localSender', 2);
  return {
    version: 2,
    remoteCertificate: certificateFromCbor(f[1]),
    associatedData: readBytes(f[2], 'associatedData', 32),
    baseKey: readBytes(f[3], 'baseKey', 32),
    initiator: readBool(f[4], 'initiator'),
    ratchet,
    pendingPreKey: pendingFromCbor(f[6]),
    preKeyDigest: readOptional(f[7], (d) => readBytes(d, 'preKeyDigest', 32)),
    localSender: {
      accountKey: readBytes(sender[0], 'localSender.accountKey', 32),
      deviceId: readUint(sender[1], 'localSender.deviceId', MAX_DEVICE_ID),
    },
    versions: { local: readVersions(f[9], 'versionsLocal'), remote: readVersions(f[10], 'versionsRemote') },
  };
}

/** A signed version set: 1..8 entries, strictly ascending, each 1..255 (formats-v2 §3.1). */
export function readVersions(v: unknown, field: string): number[] {
  const list = readArray(v, field, { min: 1, max: MAX_VERSIONS }).map((x) => readUint(x, field, 255));
  for (let i = 0; i < list.length; i++) {
    if ((list[i] as number) < 1 || (i > 0 && (list[i] as number) <= (list[i - 1] as number))) {
      fail('MALFORMED', `${field}: versions must be strictly ascending in 1..255`, { field });
    }
  }
  return list;
}

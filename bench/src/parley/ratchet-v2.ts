/**
 * Ratchet version 2 rows (issue 17, spec/13-ratchet-v2.md, formats-v2 §15 step 13), on both
 * backends:
 *
 * - ping-pong and same-direction, 100 B, time per message (send + receive) on a real v2
 *   session (v2 handshake, encrypted headers, the PQ ratchet's ML-KEM exchanges in Reed-Solomon
 *   chunks). The suite samples them with v1's and libsignal-client's rows of the same operation,
 *   and every sample holds at least `PQ_PERIOD_MESSAGES` messages, so each sample contains whole
 *   ML-KEM exchanges (key generation, encapsulation, decapsulation, decoding) and not only the
 *   cheap messages between them;
 * - bytes per message, v1 and v2, averaged over `BYTE_MESSAGES` messages sent untimed;
 * - the cost of a forged message (a header that opens under no key) against the current
 *   session at its largest (14 header keys) and against a full record (41 sessions: 574 opens),
 *   with the count of AEAD opens checked on an instrumented backend;
 * - Reed-Solomon decoding of an encapsulation key and of a ciphertext from parity chunks only.
 */
import {
  type CborValue,
  type CryptoBackend,
  type CryptoProvider,
  SessionRecord,
  cryptoProvider,
  decodeCbor,
  encodeCbor,
  limits,
} from '@parley/core';
import { MAX_HEADER_TRIALS_PER_SESSION } from '@parley/core';
import { decodeChunks, encodeChunks } from '../../../packages/core/src/pq/erasure.ts';
import type { Entry } from '../runner.ts';
import type { Scenario } from './one-to-one.ts';
import { type Backend, establishedPair, establishedPairV2, payload, providerFor, roundTrip } from './fixtures.ts';

/**
 * Messages per sample of the ping-pong rows, at least: a v2 exchange takes about 38 ping-pong
 * messages here (19 ek chunks and 17 ct chunks, 2 per message, on alternate sides), and
 * libsignal-client's SPQR about 90 (its chunks show up as 33-byte steps in its message sizes);
 * 100 holds a whole period of either.
 */
export const PQ_PERIOD_MESSAGES = 100;

/** Messages averaged for the bytes rows: several whole exchanges of both PQ ratchets. */
export const BYTE_MESSAGES = 400;

/** ML-KEM-768 encapsulation key and ciphertext lengths (FIPS 203), as the PQ ratchet sends them. */
const EK_BYTES = 1184;
const CT_BYTES = 1088;

const SMALL = 100;

function expectLength(length: number, wanted: number): void {
  if (length !== wanted) throw new Error(`round trip returned ${length} bytes, expected ${wanted}`);
}

/**
 * The v2 time scenarios for one provider (also run by the breakdown on an instrumented backend),
 * with the family of v1's operation each is sampled with.
 */
export function* ratchetV2Scenarios(provider: CryptoProvider): Generator<Scenario & { readonly family: string }> {
  const small = payload(SMALL);
  {
    const pair = establishedPairV2(provider);
    let turn = 0;
    yield {
      meta: {
        op: 'v2-ping-pong',
        label: 'ratchet v2 ping-pong, 100 B (DH step + PQ ratchet)',
        note: `v2 session from the v2 handshake; at least ${PQ_PERIOD_MESSAGES} messages per sample, so ML-KEM exchanges are included`,
      },
      family: 'ping-pong',
      task: {
        run() {
          const [from, to] = turn++ % 2 === 0 ? [pair.aliceToBob, pair.bobToAlice] : [pair.bobToAlice, pair.aliceToBob];
          expectLength(roundTrip(from, to, small).length, SMALL);
        },
      },
      overrides: { minIterations: PQ_PERIOD_MESSAGES },
    };
  }
  {
    const pair = establishedPairV2(provider);
    yield {
      meta: {
        op: 'v2-same-direction-100',
        label: 'ratchet v2 same-direction, 100 B',
        note: 'the sender carries 2 chunks of its ML-KEM key on its first 19 messages after each answer (2k = 38 chunks, spec 16 §3), none after',
      },
      family: 'same-direction-100',
      task: { run: () => expectLength(roundTrip(pair.aliceToBob, pair.bobToAlice, small).length, SMALL) },
    };
  }
}

/** The v2 time rows of one backend, in the families of v1's `ping-pong` and `same-direction-100`. */
export function ratchetV2TimeEntries(backend: Backend): Entry[] {
  return [...ratchetV2Scenarios(providerFor(backend))].map((s) => ({
    meta: { section: 'v2', subject: 'parley', variant: backend, ...s.meta },
    family: s.family,
    task: s.task,
    ...(s.overrides ? { overrides: s.overrides } : {}),
  }));
}

/** The v1 rows the v2 rows are read against, when the one-to-one section does not run (`--only v2`). */
export function ratchetV1TimeEntries(backend: Backend): Entry[] {
  const provider = providerFor(backend);
  const small = payload(SMALL);
  const meta = { section: 'one-to-one', subject: 'parley', variant: backend } as const;
  const pp = establishedPair(provider);
  const sd = establishedPair(provider);
  let turn = 0;
  return [
    {
      meta: { ...meta, op: 'ping-pong', label: 'ping-pong, 100 B (DH ratchet step per message)' },
      task: {
        run() {
          const [from, to] = turn++ % 2 === 0 ? [pp.aliceToBob, pp.bobToAlice] : [pp.bobToAlice, pp.aliceToBob];
          expectLength(to.decrypt(from.encrypt(small)).plaintext.length, SMALL);
        },
      },
    },
    {
      meta: { ...meta, op: 'same-direction-100', label: 'same-direction encrypt+decrypt, 100 B' },
      task: { run: () => expectLength(sd.bobToAlice.decrypt(sd.aliceToBob.encrypt(small)).plaintext.length, SMALL) },
    },
  ];
}

/** Sizes of `messages` 100 B messages from a fresh session of `version`, ping-pong or one way. */
export function parleyMessageBytes(version: 1 | 2, kind: 'ping-pong' | 'same-direction', messages: number): number[] {
  const provider = providerFor('node');
  const pair = version === 2 ? establishedPairV2(provider) : establishedPair(provider);
  const small = payload(SMALL);
  const sizes: number[] = [];
  for (let i = 0; i < messages; i++) {
    const [from, to] = kind === 'ping-pong' && i % 2 === 1 ? [pair.bobToAlice, pair.aliceToBob] : [pair.aliceToBob, pair.bobToAlice];
    const r = roundTrip(from, to, small);
    expectLength(r.length, SMALL);
    sizes.push(r.wire);
  }
  return sizes;
}

/** A backend that counts AEAD opens and X25519 agreements (a forged message must cost the bound, and no DH). */
function countingOpens(backend: CryptoBackend): { backend: CryptoBackend; opens: () => number; dh: () => number } {
  let opens = 0;
  let dh = 0;
  const counted: CryptoBackend = {
    ...backend,
    aeadOpen(key, nonce, sealed, ad) {
      opens++;
      return backend.aeadOpen(key, nonce, sealed, ad);
    },
    x25519(privateKey, publicKey) {
      dh++;
      return backend.x25519(privateKey, publicKey);
    },
  };
  return { backend: counted, opens: () => opens, dh: () => dh };
}

/**
 * Bob's record after a conversation that leaves his current session with every header key it
 * may hold: receiving chains up to the bound and 8 skipped-header groups (messages lost at the
 * start of a chain), so a forged header is tried against MAX_HEADER_TRIALS_PER_SESSION keys.
 */
function busyRecord(provider: CryptoProvider): Uint8Array {
  const pair = establishedPairV2(provider);
  const a = pair.aliceToBob;
  const b = pair.bobToAlice;
  for (let turn = 0; turn < 13; turn++) {
    if (turn < 8) a.encryptWithTag(payload(8)); // lost: Bob keeps its header key as skipped
    roundTrip(a, b, payload(8));
    roundTrip(b, a, payload(8));
  }
  return b.serialize();
}

/** The same record with its archive filled with copies of the current session (41 sessions in all). */
function fullRecord(record: Uint8Array): Uint8Array {
  const f = decodeCbor(record, 'record', limits.MAX_RECORD_BYTES) as CborValue[];
  f[3] = Array.from({ length: limits.MAX_ARCHIVED_SESSIONS }, () => f[2] as CborValue);
  return encodeCbor(f);
}

/** A RatchetMessageV2 whose 60-byte header and body are random: it opens under no header key. */
function forgedMessage(provider: CryptoProvider): Uint8Array {
  return encodeCbor([2, 2, provider.random(60), provider.random(200)]);
}

/** The forged-header rows of one backend: current session, then a full record. */
export function forgedHeaderEntries(backend: Backend): Entry[] {
  const provider = providerFor(backend);
  const current = busyRecord(provider);
  const full = fullRecord(current);
  const forged = forgedMessage(provider);
  const tag = provider.random(32);
  const entries: Entry[] = [];
  for (const [op, bytes, what, sessions] of [
    ['v2-forged-header-current', current, 'current session only', 1],
    ['v2-forged-header-full', full, 'full record (current + 40 archived)', 1 + limits.MAX_ARCHIVED_SESSIONS],
  ] as const) {
    // Counted once, untimed, on an instrumented copy of the backend: the bound of spec 13 §5.
    const counter = countingOpens(provider.backend);
    const probe = SessionRecord.deserialize(bytes, cryptoProvider(counter.backend));
    const [opens0, dh0] = [counter.opens(), counter.dh()];
    refused(() => probe.decrypt(forged, { frankingTag: tag }));
    const opens = counter.opens() - opens0;
    const dh = counter.dh() - dh0;
    const bound = sessions * MAX_HEADER_TRIALS_PER_SESSION;
    if (opens > bound || dh > 0) throw new Error(`a forged header cost ${opens} AEAD opens (bound ${bound}) and ${dh} X25519`);
    const record = SessionRecord.deserialize(bytes, provider);
    entries.push({
      meta: {
        section: 'v2',
        subject: 'parley',
        variant: backend,
        op,
        label: `forged message, ${what}`,
        note: `${opens} AEAD opens (bound ${sessions} × ${MAX_HEADER_TRIALS_PER_SESSION} = ${bound}) and ${dh} X25519, counted on an instrumented backend; record ${bytes.length.toLocaleString('en-US')} B`,
      },
      task: { run: () => refused(() => record.decrypt(forged, { frankingTag: tag })) },
    });
  }
  return entries;
}

function refused(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if ((e as { code?: string }).code === 'HEADER_DECRYPT_FAILED' || (e as { code?: string }).code === 'DECRYPT_FAILED') return;
    throw e;
  }
  throw new Error('a forged message was accepted');
}

/**
 * Reed-Solomon decoding (spec 13 §5.2) of an encapsulation key (k = 19) and a ciphertext
 * (k = 17) from parity chunks only, the worst case: with the data chunks the decoder only copies.
 * Pure JavaScript, the same on both backends.
 */
export function erasureEntries(): Entry[] {
  const bytes = payload(EK_BYTES);
  return [
    ['ek', EK_BYTES],
    ['ct', CT_BYTES],
  ].map(([what, length]) => {
    const data = bytes.slice(0, length as number);
    const k = Math.ceil((length as number) / 64);
    const indices = Array.from({ length: k }, (_, i) => 100 + i);
    const chunks = encodeChunks(data, indices).map((chunk, i) => ({ index: indices[i] as number, bytes: chunk }));
    return {
      meta: {
        section: 'v2',
        subject: 'parley',
        op: `v2-rs-decode-${what}`,
        label: `Reed-Solomon decode, ${what === 'ek' ? 'ML-KEM key' : 'ML-KEM ciphertext'} (${length} B) from ${k} parity chunks`,
        note: 'pure JavaScript (backend-independent); once per exchange',
      },
      task: {
        run() {
          if (decodeChunks(chunks, length as number)[7] !== data[7]) throw new Error('decode mismatch');
        },
      },
    } satisfies Entry;
  });
}

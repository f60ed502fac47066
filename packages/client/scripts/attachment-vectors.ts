/**
 * Writes test-vectors/attachments.json: the encrypted-attachment format of
 * spec/11-attachments.md, pinned byte for byte.
 *
 *   node --import tsx packages/client/scripts/attachment-vectors.ts
 *
 * Deterministic: fixed keys, salts and plaintexts, noble backend. The
 * expected bytes are built here from the spec's steps (header layout, HKDF,
 * nonces, ChaCha20-Poly1305, SHA-256) with the backend's primitives, not by
 * calling the implementation under src/attachments, so the vector test
 * compares two independent constructions. Invalid cases are forged the same
 * way, with the key where an attack needs it (a wrong final flag can only
 * come from someone who holds the key), each with exactly one defect besides
 * the digest it may break.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type CborValue,
  type CryptoBackend,
  type CryptoProvider,
  PROTOCOL_VERSION,
  concatBytes,
  cryptoProvider,
  encodeCbor,
  nobleBackend,
  toHex,
  utf8,
} from '@parley/core';

/** Bump when the shape of the file changes (test-vectors/README.md "Format"). */
const VECTOR_FORMAT_VERSION = 1;

export const VECTOR_FILE = fileURLToPath(new URL('../../../test-vectors/attachments.json', import.meta.url));

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type TestCase = { comment: string; result: 'valid' | 'invalid'; [field: string]: Json };
interface TestGroup {
  type: string;
  spec: string;
  description: string;
  tests: TestCase[];
}

const hex = (b: Uint8Array): string => toHex(b);

/**
 * A provider whose random source returns the given byte strings in order
 * (the attachment key, then the salt: spec §6.1) and refuses anything else.
 * Exported for the vector test, which re-encrypts each valid case with it.
 */
export function scriptedProvider(backend: CryptoBackend, ...draws: Uint8Array[]): CryptoProvider {
  let next = 0;
  return cryptoProvider(backend, (n) => {
    const bytes = draws[next++];
    if (bytes === undefined || bytes.length !== n) throw new Error(`scripted random: draw ${next} of ${n} bytes was not scripted`);
    return bytes.slice();
  });
}

// ---- The format, restated from spec/11-attachments.md ---------------------

const MAGIC = utf8('PRLYAT');
const VERSION = 1;
const TAG = 16;
const HEADER = 56;

/** A fixed, recognisable byte string: SHA-256 of a label, cut to length. */
function fixed(label: string, length: number): Uint8Array {
  return nobleBackend.sha256(utf8(`Parley attachment vectors: ${label}`)).slice(0, length);
}

interface Keys {
  prefix: Uint8Array;
  commitment: Uint8Array;
  payloadKey: Uint8Array;
  header: Uint8Array;
}

/** §3 and §4.1: header prefix, HKDF, commitment. `exponent` and `version` may be forged. */
function keySchedule(key: Uint8Array, salt: Uint8Array, exponent: number, version = VERSION): Keys {
  const prefix = concatBytes(MAGIC, Uint8Array.of(version, exponent), salt);
  const okm = nobleBackend.hkdfSha256(key, salt, concatBytes(utf8('Parley v1 attachment'), prefix.subarray(0, 8)), 64);
  const commitment = okm.slice(0, 32);
  return { prefix, commitment, payloadKey: okm.slice(32), header: concatBytes(prefix, commitment) };
}

/** §4.2: 11-byte big-endian index || final flag. */
function nonce(index: number, final: boolean): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setUint32(7, index, false);
  n[11] = final ? 1 : 0;
  return n;
}

function seal(keys: Keys, index: number, final: boolean, plaintext: Uint8Array): Uint8Array {
  return nobleBackend.aeadSeal(keys.payloadKey, nonce(index, final), plaintext, new Uint8Array(0));
}

/** §4.3: the chunks of a plaintext (one empty chunk for an empty one). */
function split(plaintext: Uint8Array, chunkSize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < plaintext.length; i += chunkSize) out.push(plaintext.subarray(i, i + chunkSize));
  return out.length === 0 ? [new Uint8Array(0)] : out;
}

interface Sample {
  name: string;
  key: Uint8Array;
  salt: Uint8Array;
  chunkSize: number;
  plaintext: Uint8Array;
  keys: Keys;
  sealed: Uint8Array[];
  ciphertext: Uint8Array;
  digest: Uint8Array;
}

function sample(name: string, chunkSize: number, plaintext: Uint8Array): Sample {
  const key = fixed(`${name} key`, 32);
  const salt = fixed(`${name} salt`, 16);
  const keys = keySchedule(key, salt, Math.log2(chunkSize));
  const pieces = split(plaintext, chunkSize);
  const sealed = pieces.map((p, i) => seal(keys, i, i === pieces.length - 1, p));
  const ciphertext = concatBytes(keys.header, ...sealed);
  return { name, key, salt, chunkSize, plaintext, keys, sealed, ciphertext, digest: nobleBackend.sha256(ciphertext) };
}

/** The key info fields of a (possibly forged) blob: sizes and digest as the sender would state them. */
function keyInfoJson(s: Sample, over: { plaintextSize?: number; ciphertext?: Uint8Array; digest?: Uint8Array; key?: Uint8Array } = {}) {
  const plaintextSize = over.plaintextSize ?? s.plaintext.length;
  const chunks = Math.max(1, Math.ceil(plaintextSize / s.chunkSize));
  return {
    key: hex(over.key ?? s.key),
    digest: hex(over.digest ?? s.digest),
    plaintextSize,
    ciphertextSize: HEADER + plaintextSize + TAG * chunks,
    chunkSize: s.chunkSize,
  };
}

// ---- Groups ---------------------------------------------------------------

const EMPTY = sample('empty', 16, new Uint8Array(0));
const ONE_BYTE = sample('one byte', 16, utf8('!'));
const ONE_CHUNK = sample('exactly one chunk', 16, utf8('sixteen bytes...'));
const CHUNK_PLUS_ONE = sample('one chunk plus one byte', 16, utf8('seventeen bytes!!'));
const THREE = sample('three chunks', 16, utf8('The quick brown fox jumps over the lazy dog'));
const THREE_FULL = sample('three full chunks', 16, utf8('forty-eight bytes: three chunks of sixteen each.'));
const SEVEN = sample(
  'seven chunks at 32 bytes',
  32,
  utf8('Attachments are sealed in chunks so that a video never has to fit in memory;'.repeat(3)),
);
const DEFAULT_SIZE = sample('default chunk size', 65536, utf8('Parley'));

function validGroup(): TestGroup {
  return {
    type: 'AttachmentEncryption',
    spec: 'spec/11-attachments.md §3-§6',
    description:
      'Valid attachments. Encrypting `plaintext` with the random source returning `key` then `salt` gives `ciphertext` and the key info; decrypting `ciphertext` with the key info gives `plaintext`. `chunks` lists each sealed chunk with its nonce.',
    tests: [EMPTY, ONE_BYTE, ONE_CHUNK, CHUNK_PLUS_ONE, THREE, THREE_FULL, SEVEN, DEFAULT_SIZE].map((s) => ({
      comment: s.name,
      key: hex(s.key),
      salt: hex(s.salt),
      chunkSize: s.chunkSize,
      plaintext: hex(s.plaintext),
      headerPrefix: hex(s.keys.prefix),
      commitment: hex(s.keys.commitment),
      payloadKey: hex(s.keys.payloadKey),
      chunks: s.sealed.map((c, i) => ({
        index: i,
        final: i === s.sealed.length - 1,
        nonce: hex(nonce(i, i === s.sealed.length - 1)),
        sealed: hex(c),
      })),
      ciphertext: hex(s.ciphertext),
      digest: hex(s.digest),
      plaintextSize: s.plaintext.length,
      ciphertextSize: s.ciphertext.length,
      result: 'valid',
    })),
  };
}

type Failure = { error: string; reason: string; chunk?: number };

const truncated: Failure = { error: 'MALFORMED', reason: 'truncated' };
const trailing: Failure = { error: 'MALFORMED', reason: 'trailing-data' };
const wrongKey: Failure = { error: 'DECRYPT_FAILED', reason: 'wrong-key' };
const digestMismatch: Failure = { error: 'DECRYPT_FAILED', reason: 'digest-mismatch' };
const chunkAuth = (chunk: number): Failure => ({ error: 'DECRYPT_FAILED', reason: 'chunk-auth', chunk });
const badHeader = (error: string): Failure => ({ error, reason: 'bad-header' });

/**
 * One invalid blob. `whole` is the failure a full download reports
 * (decryptAttachment / decryptAttachmentStream); `seek` is what a seeking
 * reader reports when it reads every chunk by range requests, or null when a
 * reader cannot see the defect (bytes it never asks for, or the digest).
 */
function invalid(
  comment: string,
  s: Sample,
  ciphertext: Uint8Array,
  whole: Failure,
  seek: Failure | null,
  info = keyInfoJson(s),
): TestCase {
  return {
    comment,
    ...info,
    ciphertext: hex(ciphertext),
    result: 'invalid',
    ...whole,
    seek: seek === null ? null : { ...seek },
  };
}

function flip(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  out[index] = (out[index] as number) ^ mask;
  return out;
}

function invalidGroup(): TestGroup {
  const s = THREE; // chunks of 16, 16 and 11 plaintext bytes
  const [c0, c1, c2] = s.sealed as [Uint8Array, Uint8Array, Uint8Array];
  const h = s.keys.header;
  const p = s.plaintext;
  const forged = (...chunks: Uint8Array[]) => concatBytes(h, ...chunks);
  const restated = (blob: Uint8Array, plaintextSize: number) => keyInfoJson(s, { plaintextSize, digest: nobleBackend.sha256(blob) });

  const lastAsNonFinal = forged(c0, c1, seal(s.keys, 2, false, p.subarray(32)));
  const middleAsFinal = forged(c0, seal(s.keys, 1, true, p.subarray(16, 32)), c2);
  const cutAtBoundary = forged(c0, c1);
  const f = THREE_FULL;
  const extendedSealed = concatBytes(f.ciphertext, seal(f.keys, 3, true, utf8('more!')));
  const emptyFinalAfterFull = concatBytes(
    f.keys.header,
    seal(f.keys, 0, false, f.plaintext.subarray(0, 16)),
    seal(f.keys, 1, false, f.plaintext.subarray(16, 32)),
    seal(f.keys, 2, false, f.plaintext.subarray(32)),
    seal(f.keys, 3, true, new Uint8Array(0)),
  );
  const other = sample('another attachment, same key and chunk size', 16, utf8('Chunks from another attachment do not fit.'));
  const otherKeysSameKey = keySchedule(s.key, other.salt, 4);
  const spliced = forged(c0, seal(otherKeysSameKey, 1, false, p.subarray(16, 32)), c2);
  const emptyNonFinal = concatBytes(EMPTY.keys.header, seal(EMPTY.keys, 0, false, new Uint8Array(0)));
  const wrongVersion = keySchedule(s.key, s.salt, 4, 2);
  const smallExponent = keySchedule(s.key, s.salt, 3);
  const otherExponent = keySchedule(s.key, s.salt, 5);

  const tests: TestCase[] = [
    invalid('truncated: the final chunk is missing', s, forged(c0, c1), truncated, truncated),
    invalid('truncated inside the final chunk', s, s.ciphertext.subarray(0, s.ciphertext.length - 5), truncated, truncated),
    invalid('truncated inside the header', s, s.ciphertext.subarray(0, 30), truncated, truncated),
    invalid('empty ciphertext', s, new Uint8Array(0), truncated, truncated),
    invalid(
      'truncated at a chunk boundary with sizes and digest restated: the new last chunk was sealed non-final',
      s,
      cutAtBoundary,
      chunkAuth(1),
      chunkAuth(1),
      restated(cutAtBoundary, 32),
    ),
    invalid('reordered: chunks 0 and 1 swapped', s, forged(c1, c0, c2), chunkAuth(0), chunkAuth(0)),
    invalid('reordered, digest restated', s, forged(c1, c0, c2), chunkAuth(0), chunkAuth(0), restated(forged(c1, c0, c2), 43)),
    invalid('duplicated: chunk 0 again in place of chunk 1', s, forged(c0, c0, c2), chunkAuth(1), chunkAuth(1)),
    invalid('spliced: chunk 1 from another attachment under the same key', s, spliced, chunkAuth(1), chunkAuth(1)),
    invalid(
      'flipped final flag: the last chunk sealed as non-final (digest restated)',
      s,
      lastAsNonFinal,
      chunkAuth(2),
      chunkAuth(2),
      restated(lastAsNonFinal, 43),
    ),
    invalid(
      'flipped final flag: a middle chunk sealed as final (digest restated)',
      s,
      middleAsFinal,
      chunkAuth(1),
      chunkAuth(1),
      restated(middleAsFinal, 43),
    ),
    invalid(
      'flipped final flag: an empty attachment whose only chunk is sealed non-final (digest restated)',
      EMPTY,
      emptyNonFinal,
      chunkAuth(0),
      chunkAuth(0),
      keyInfoJson(EMPTY, { digest: nobleBackend.sha256(emptyNonFinal) }),
    ),
    invalid('extended: one byte after the final chunk', s, concatBytes(s.ciphertext, Uint8Array.of(0)), trailing, null),
    invalid('extended: the final chunk repeated after itself', s, concatBytes(s.ciphertext, c2), trailing, null),
    invalid(
      'extended with a chunk sealed under the key, sizes and digest restated: the old final chunk is not final',
      f,
      extendedSealed,
      chunkAuth(2),
      chunkAuth(2),
      keyInfoJson(f, { plaintextSize: 53, digest: nobleBackend.sha256(extendedSealed) }),
    ),
    invalid(
      'an empty final chunk after full chunks (never written: the last full chunk is the final one, so chunk 2 fails first)',
      f,
      emptyFinalAfterFull,
      chunkAuth(2),
      chunkAuth(2),
      keyInfoJson(f, { digest: nobleBackend.sha256(emptyFinalAfterFull) }),
    ),
    invalid('bit flipped in chunk 1 ciphertext', s, flip(s.ciphertext, HEADER + 16 + TAG + 3), chunkAuth(1), chunkAuth(1)),
    invalid('bit flipped in chunk 2 tag', s, flip(s.ciphertext, s.ciphertext.length - 1, 0x80), chunkAuth(2), chunkAuth(2)),
    invalid(
      'wrong digest in the key info (blob intact)',
      s,
      s.ciphertext,
      digestMismatch,
      null,
      keyInfoJson(s, { digest: flip(s.digest, 31) }),
    ),
    invalid('wrong key', s, s.ciphertext, wrongKey, wrongKey, keyInfoJson(s, { key: flip(s.key, 0) })),
    invalid('header: bad magic', s, flip(s.ciphertext, 0, 0x20), badHeader('MALFORMED'), badHeader('MALFORMED')),
    invalid(
      'header: format version 2 (commitment recomputed)',
      s,
      concatBytes(wrongVersion.header, s.ciphertext.subarray(HEADER)),
      badHeader('UNSUPPORTED_VERSION'),
      badHeader('UNSUPPORTED_VERSION'),
    ),
    invalid(
      'header: chunk-size exponent 3 is below the minimum (commitment recomputed)',
      s,
      concatBytes(smallExponent.header, s.ciphertext.subarray(HEADER)),
      badHeader('MALFORMED'),
      badHeader('MALFORMED'),
    ),
    invalid(
      'header: chunk-size exponent 5 differs from the key info (commitment recomputed)',
      s,
      concatBytes(otherExponent.header, s.ciphertext.subarray(HEADER)),
      badHeader('MALFORMED'),
      badHeader('MALFORMED'),
    ),
    invalid('header: salt edited', s, flip(s.ciphertext, 8), wrongKey, wrongKey),
    invalid('header: commitment edited', s, flip(s.ciphertext, 24 + 31), wrongKey, wrongKey),
  ];
  return {
    type: 'AttachmentDecryption',
    spec: 'spec/11-attachments.md §6-§8',
    description:
      'Invalid blobs. A full download (in memory or streaming) must fail with `error` (the ParleyError code) and `reason` (and `chunk` for chunk-auth); a seeking reader that reads every chunk by range must fail with `seek`, or succeed where `seek` is null (a reader never sees bytes past the end, nor the digest).',
    tests,
  };
}

interface PointerFields {
  id: string;
  key: Uint8Array;
  digest: Uint8Array;
  plaintextSize: number;
  ciphertextSize: number;
  chunkSize: number;
  contentType: string | null;
  fileName: string | null;
}

const BASE_POINTER: PointerFields = {
  id: 'AbC-123_xyz',
  key: THREE.key,
  digest: THREE.digest,
  plaintextSize: 43,
  ciphertextSize: THREE.ciphertext.length,
  chunkSize: 16,
  contentType: 'video/mp4',
  fileName: 'fox.mp4',
};

function pointerArray(p: PointerFields, version = 1): CborValue[] {
  return [version, p.id, p.key, p.digest, p.plaintextSize, p.ciphertextSize, p.chunkSize, p.contentType, p.fileName];
}

function pointerJson(p: PointerFields): { [key: string]: Json } {
  return { ...p, key: hex(p.key), digest: hex(p.digest) };
}

/** A 9-item CBOR array assembled from already-encoded items (to forge non-canonical encodings). */
function rawArray(items: Uint8Array[]): Uint8Array {
  return concatBytes(Uint8Array.of(0x80 + items.length), ...items);
}

function pointerGroup(): TestGroup {
  const valid = (comment: string, p: PointerFields): TestCase => ({
    comment,
    encoding: hex(encodeCbor(pointerArray(p))),
    pointer: pointerJson(p),
    result: 'valid',
  });
  const bad = (comment: string, encoding: Uint8Array, error: string): TestCase => ({
    comment,
    encoding: hex(encoding),
    result: 'invalid',
    error,
    reason: 'bad-pointer',
  });
  const edit = (over: Partial<PointerFields>) => encodeCbor(pointerArray({ ...BASE_POINTER, ...over }));
  const items = pointerArray(BASE_POINTER).map((v) => encodeCbor(v));
  const withItem = (index: number, encoded: Uint8Array) => rawArray(items.map((it, i) => (i === index ? encoded : it)));
  return {
    type: 'AttachmentPointer',
    spec: 'spec/11-attachments.md §5',
    description:
      'Pointer encodings: valid ones decode to `pointer` and re-encode to `encoding`; invalid ones fail with `error` and reason bad-pointer.',
    tests: [
      valid('full pointer', BASE_POINTER),
      valid('no content type, no file name', { ...BASE_POINTER, contentType: null, fileName: null }),
      valid('empty attachment at the default chunk size, media type with a parameter, non-ASCII file name', {
        id: 'x',
        key: EMPTY.key,
        digest: EMPTY.digest,
        plaintextSize: 0,
        ciphertextSize: 72,
        chunkSize: 65536,
        contentType: 'text/plain; charset=utf-8',
        fileName: 'notes — été.txt',
      }),
      valid('a 4 GB video at the default chunk size', {
        ...BASE_POINTER,
        plaintextSize: 4_000_000_000,
        ciphertextSize: HEADER + 4_000_000_000 + TAG * Math.ceil(4_000_000_000 / 65536),
        chunkSize: 65536,
      }),
      bad('version 2', encodeCbor(pointerArray(BASE_POINTER, 2)), 'UNSUPPORTED_VERSION'),
      bad('eight fields', encodeCbor(pointerArray(BASE_POINTER).slice(0, 8)), 'MALFORMED'),
      bad('ten fields', encodeCbor([...pointerArray(BASE_POINTER), null]), 'MALFORMED'),
      bad('key of 31 bytes', edit({ key: THREE.key.subarray(0, 31) }), 'MALFORMED'),
      bad('digest of 33 bytes', edit({ digest: concatBytes(THREE.digest, Uint8Array.of(0)) }), 'MALFORMED'),
      bad('key as a text string', withItem(2, encodeCbor(hex(THREE.key))), 'MALFORMED'),
      bad('chunk size not a power of two', edit({ chunkSize: 1000 }), 'MALFORMED'),
      bad('chunk size 8, below the minimum', edit({ chunkSize: 8 }), 'MALFORMED'),
      bad('chunk size 8 MiB, above the maximum', edit({ chunkSize: 1 << 23 }), 'MALFORMED'),
      bad('ciphertext size one byte short of the layout', edit({ ciphertextSize: THREE.ciphertext.length - 1 }), 'MALFORMED'),
      bad('negative plaintext size', edit({ plaintextSize: -1 }), 'MALFORMED'),
      bad(
        'plaintext size 2^32, an 8-byte integer outside the CBOR subset',
        withItem(4, Uint8Array.of(0x1b, 0, 0, 0, 1, 0, 0, 0, 0)),
        'MALFORMED',
      ),
      bad(
        'plaintext size 2^32 - 1: its ciphertext would exceed 2^32 - 1, so no ciphertext size matches',
        edit({ plaintextSize: 2 ** 32 - 1, ciphertextSize: 2 ** 32 - 1, chunkSize: 65536 }),
        'MALFORMED',
      ),
      bad('empty id', edit({ id: '' }), 'MALFORMED'),
      bad('id with a slash', edit({ id: '../etc' }), 'MALFORMED'),
      bad('id of 129 characters', edit({ id: 'a'.repeat(129) }), 'OVERSIZED'),
      bad('content type without a subtype', edit({ contentType: 'video' }), 'MALFORMED'),
      bad('file name with a path', edit({ fileName: '../fox.mp4' }), 'MALFORMED'),
      bad('file name "..', edit({ fileName: '..' }), 'MALFORMED'),
      bad('file name with a right-to-left override', edit({ fileName: 'fox\u202e4pm.exe' }), 'MALFORMED'),
      bad('file name with a newline', edit({ fileName: 'fox\n.mp4' }), 'MALFORMED'),
      bad('non-canonical: plaintext size 43 in a two-byte form', withItem(4, Uint8Array.of(0x19, 0x00, 0x2b)), 'MALFORMED'),
      bad('trailing byte after the array', concatBytes(encodeCbor(pointerArray(BASE_POINTER)), Uint8Array.of(0)), 'MALFORMED'),
      bad('a map, not an array', Uint8Array.of(0xa1, 0x01, 0x02), 'MALFORMED'),
      bad('empty input', new Uint8Array(0), 'MALFORMED'),
      bad(
        'over 1024 bytes (a valid pointer followed by padding)',
        concatBytes(encodeCbor(pointerArray(BASE_POINTER)), new Uint8Array(1024)),
        'OVERSIZED',
      ),
    ],
  };
}

function seekGroup(): TestGroup {
  const s = THREE;
  const ranges: [number, number, string][] = [
    [0, 43, 'everything'],
    [0, 0, 'an empty range at the start names chunk 0'],
    [16, 32, 'exactly chunk 1'],
    [15, 17, 'two bytes across the boundary of chunks 0 and 1'],
    [20, 43, 'from inside chunk 1 to the end'],
    [42, 43, 'the last byte'],
    [43, 43, 'an empty range at the end names the final chunk'],
  ];
  return {
    type: 'AttachmentSeek',
    spec: 'spec/11-attachments.md §7',
    description:
      'Plaintext ranges [start, end) of the "three chunks" attachment (chunk size 16, 43 bytes): the chunks that hold them (firstChunk..lastChunk), the ciphertext range [ciphertextStart, ciphertextEnd) of those chunks (what ciphertextRangeFor returns and a reader fetches), and the plaintext they decrypt to. An empty range [x, x) names the one chunk holding x (the final chunk when x is the plaintext size) and its ciphertext range, so a player can check a position; a reader asked for it returns empty plaintext and fetches nothing beyond the header (spec/11-attachments.md §7).',
    tests: ranges.map(([start, end, comment]) => {
      const firstChunk = Math.min(Math.floor(start / 16), 2);
      const lastChunk = end > start ? Math.floor((end - 1) / 16) : firstChunk;
      const offset = (i: number) => HEADER + i * (16 + TAG);
      return {
        comment,
        ...keyInfoJson(s),
        ciphertext: hex(s.ciphertext),
        start,
        end,
        firstChunk,
        lastChunk,
        ciphertextStart: offset(firstChunk),
        ciphertextEnd: offset(lastChunk) + (s.sealed[lastChunk] as Uint8Array).length,
        plaintext: hex(s.plaintext.subarray(start, end)),
        result: 'valid',
      };
    }),
  };
}

/** The file's text: deterministic, so it can be regenerated and compared byte for byte. */
export function buildAttachmentVectors(): string {
  const groups = [validGroup(), invalidGroup(), pointerGroup(), seekGroup()];
  let id = 0;
  const file = {
    description:
      'Encrypted attachments: chunked ChaCha20-Poly1305 (STREAM), key commitment, whole-blob SHA-256, pointer encoding, seeking.',
    spec: 'spec/11-attachments.md',
    version: VECTOR_FORMAT_VERSION,
    protocolVersion: PROTOCOL_VERSION,
    formatVersion: VERSION,
    numberOfTests: groups.reduce((n, g) => n + g.tests.length, 0),
    notes: {
      bytes: 'All byte strings are lowercase hex.',
      generator: 'node --import tsx packages/client/scripts/attachment-vectors.ts',
      order:
        'Checks run in the order of spec §6.2: key info; header (present, magic, version, chunk size, commitment); each chunk in order (present, authentic); nothing after the final chunk; digest. The first failed check is the one reported, whatever the piece boundaries of a stream.',
    },
    testGroups: groups.map((g) => ({
      type: g.type,
      spec: g.spec,
      description: g.description,
      tests: g.tests.map(({ comment, ...rest }) => ({ tcId: ++id, comment, ...rest })),
    })),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(VECTOR_FILE, buildAttachmentVectors());
  console.log(`wrote ${VECTOR_FILE}`);
}

/**
 * The primitive floor: the same primitive work a Parley operation does, done
 * by bare backend calls with no protocol around it (no state copies, no
 * records, no validation), so the table can show how close each Parley
 * operation is to what its primitives cost. Issue 5 §3.
 *
 * Each composite mirrors core's code path call for call (counted from
 * packages/core/src: ratchet.ts, kdf.ts, pqxdh.ts, messages.ts):
 *   chain step      = 3 HMAC-SHA256 (message key, nonce, next chain key)
 *   same-direction  = sender: chain step, CBOR header+message, AEAD seal;
 *                     receiver: CBOR decode message+header, chain step, AEAD open
 *   ping-pong       = same-direction + the receiver's DH ratchet step:
 *                     2 X25519 + 1 X25519 key generation + 2 HKDF
 *   skipped-1000    = 1,001 chain steps, CBOR decode, AEAD open
 *   setup           = 4 Ed25519 verify, 11 X25519, 3 X25519 key generations,
 *                     ML-KEM-768 encaps+decaps, 5 HKDF, 3 SHA-256, 2 chain steps,
 *                     AEAD seal+open, CBOR
 * Public keys that arrive over the wire are fresh byte arrays each time (as
 * after decoding), so node's per-buffer key cache helps the floor exactly as
 * much as it helps core.
 */
import { type CryptoBackend, concatBytes, decodeCbor, encodeCbor, nobleBackend, paddedLength } from '@parley/core';
import { nodeBackend } from '@parley/core/node';
import { BACKENDS, type Backend, payload } from './parley/fixtures.ts';
import type { MeasureOptions, Task } from './harness.ts';
import type { Entry, Runner } from './runner.ts';

const MESSAGE_KEY = Uint8Array.of(1);
const NEXT_CHAIN_KEY = Uint8Array.of(2);
const NONCE = Uint8Array.of(3);
const ROOT_INFO = new TextEncoder().encode('floor root chain');
const PQXDH_INFO = new TextEncoder().encode('floor pqxdh');
const SALT = new Uint8Array(32);
const AD_PREFIX = new Uint8Array(32).fill(9);

function chainStep(b: CryptoBackend, chainKey: Uint8Array): { key: Uint8Array; nonce: Uint8Array; next: Uint8Array } {
  return {
    key: b.hmacSha256(chainKey, MESSAGE_KEY),
    nonce: b.hmacSha256(chainKey, NONCE).subarray(0, 12),
    next: b.hmacSha256(chainKey, NEXT_CHAIN_KEY),
  };
}

interface Link {
  chainKey: Uint8Array;
  counter: number;
}

/** One message: sender's and receiver's symmetric work (padding size as core pads). */
function symmetricMessage(b: CryptoBackend, send: Link, receive: Link, ratchetKey: Uint8Array, plaintextLength: number): void {
  const s = chainStep(b, send.chainKey);
  send.chainKey = s.next;
  const header = encodeCbor([ratchetKey, 0, send.counter++]);
  const sealed = b.aeadSeal(s.key, s.nonce, new Uint8Array(paddedLength(plaintextLength + 1)), concatBytes(AD_PREFIX, header));
  const wire = encodeCbor([1, 2, header, sealed]);

  const fields = decodeCbor(wire, 'floor message', 1 << 21) as [number, number, Uint8Array, Uint8Array];
  decodeCbor(fields[2], 'floor header', 64);
  const r = chainStep(b, receive.chainKey);
  receive.chainKey = r.next;
  receive.counter++;
  if (!b.aeadOpen(r.key, r.nonce, fields[3], concatBytes(AD_PREFIX, fields[2]))) throw new Error('floor: AEAD open failed');
}

interface KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

function keyPair(b: CryptoBackend): KeyPair {
  const privateKey = b.randomBytes(32);
  return { privateKey, publicKey: b.x25519PublicKey(privateKey) };
}

/** The receiver's DH ratchet step on a new ratchet key: as ratchetDecrypt step 3. */
function dhRatchetStep(
  b: CryptoBackend,
  rootKey: Uint8Array,
  own: KeyPair,
  theirPublic: Uint8Array,
): { rootKey: Uint8Array; own: KeyPair } {
  const received = b.hkdfSha256(b.x25519(own.privateKey, theirPublic), rootKey, ROOT_INFO, 64);
  const next = keyPair(b);
  const sending = b.hkdfSha256(b.x25519(next.privateKey, theirPublic), received.subarray(0, 32), ROOT_INFO, 64);
  return { rootKey: sending.subarray(0, 32), own: next };
}

const fresh = (bytes: Uint8Array) => bytes.slice();

interface SetupKeys {
  aliceIdentity: KeyPair;
  bobIdentity: KeyPair;
  signingKey: Uint8Array;
  signed: KeyPair;
  oneTime: KeyPair;
  kem: { publicKey: Uint8Array; secretKey: Uint8Array };
  signatures: Uint8Array[];
  signedBytes: Uint8Array[];
}

function setupKeys(b: CryptoBackend): SetupKeys {
  const seed = b.randomBytes(32);
  const signed = keyPair(b);
  const kem = b.mlkemKeygen(b.randomBytes(64));
  const signedBytes = [payload(120), encodeCbor(['spk', 1, signed.publicKey]), encodeCbor(['kem', 1, kem.publicKey])];
  return {
    aliceIdentity: keyPair(b),
    bobIdentity: keyPair(b),
    signingKey: b.ed25519PublicKey(seed),
    signed,
    oneTime: keyPair(b),
    kem,
    signedBytes,
    signatures: signedBytes.map((m) => b.ed25519Sign(seed, m)),
  };
}

/** PQXDH both sides plus the first message, by primitives only. */
function setupFloor(b: CryptoBackend, k: SetupKeys): void {
  // Initiator: the bundle's three signatures, then the agreement.
  for (let j = 0; j < 3; j++) {
    if (!b.ed25519Verify(fresh(k.signingKey), k.signedBytes[j] as Uint8Array, k.signatures[j] as Uint8Array))
      throw new Error('floor: verify');
  }
  const spk = fresh(k.signed.publicKey);
  const ek = keyPair(b);
  const dhA = [
    b.x25519(k.aliceIdentity.privateKey, spk),
    b.x25519(ek.privateKey, fresh(k.bobIdentity.publicKey)),
    b.x25519(ek.privateKey, spk),
    b.x25519(ek.privateKey, fresh(k.oneTime.publicKey)),
  ];
  const enc = b.mlkemEncapsulate(fresh(k.kem.publicKey), b.randomBytes(32));
  const skA = b.hkdfSha256(concatBytes(...dhA, enc.sharedSecret), SALT, PQXDH_INFO, 32);
  b.sha256(encodeCbor(['ad', k.aliceIdentity.publicKey, k.bobIdentity.publicKey]));
  const ratchet = keyPair(b);
  const sendChain = b.hkdfSha256(b.x25519(ratchet.privateKey, spk), skA, ROOT_INFO, 64).slice(32);
  const send: Link = { chainKey: sendChain, counter: 0 };

  // Responder: the initiator's certificate, the agreement, then a DH ratchet step to read the message.
  const baseKey = fresh(ek.publicKey);
  if (!b.ed25519Verify(fresh(k.signingKey), k.signedBytes[0] as Uint8Array, k.signatures[0] as Uint8Array))
    throw new Error('floor: verify');
  const dhB = [
    b.x25519(k.signed.privateKey, fresh(k.aliceIdentity.publicKey)),
    b.x25519(k.bobIdentity.privateKey, baseKey),
    b.x25519(k.signed.privateKey, baseKey),
    b.x25519(k.oneTime.privateKey, baseKey),
  ];
  // The responder keeps a digest of the handshake fields (certificate, ids, KEM ciphertext) with the session.
  b.sha256(encodeCbor([k.signedBytes[0] as Uint8Array, baseKey, 1, 1, 1, enc.ciphertext]));
  const ss = b.mlkemDecapsulate(enc.ciphertext, k.kem.secretKey);
  const skB = b.hkdfSha256(concatBytes(...dhB, ss), SALT, PQXDH_INFO, 32);
  b.sha256(encodeCbor(['ad', k.aliceIdentity.publicKey, k.bobIdentity.publicKey]));
  const theirRatchet = fresh(ratchet.publicKey);
  const receiveChain = b.hkdfSha256(b.x25519(k.signed.privateKey, theirRatchet), skB, ROOT_INFO, 64).slice(32);
  const next = keyPair(b);
  b.hkdfSha256(b.x25519(next.privateKey, theirRatchet), skB, ROOT_INFO, 64);
  symmetricMessage(b, send, { chainKey: receiveChain, counter: 0 }, ratchet.publicKey, 100);
}

/** A floor composite: the bare-primitive counterpart of one Parley operation. */
export interface FloorComposite {
  readonly op: string;
  readonly label: string;
  readonly note: string;
  readonly task: Task<FloorContext>;
  readonly overrides?: Partial<MeasureOptions>;
}

type FloorContext = { start: Uint8Array; wire: Uint8Array } | undefined;

/**
 * The composites for one backend, with the same op keys as Parley's
 * scenarios so the report lines them up. A test runs each composite and the
 * matching Parley operation on counting backends and checks that they make
 * the same primitive calls.
 */
export function floorComposites(b: CryptoBackend, quick: boolean): FloorComposite[] {
  const out: FloorComposite[] = [];
  for (const [op, length, label] of [
    ['same-direction-100', 100, 'floor: same-direction message, 100 B'],
    ['same-direction-1024', 1024, 'floor: same-direction message, 1 KiB'],
  ] as const) {
    const send: Link = { chainKey: b.randomBytes(32), counter: 0 };
    const receive: Link = { chainKey: send.chainKey, counter: 0 };
    const ratchetKey = keyPair(b).publicKey;
    out.push({
      op,
      label,
      note: '6 HMAC, AEAD seal+open of the padded size, CBOR encode+decode',
      task: { run: () => symmetricMessage(b, send, receive, ratchetKey, length) },
    });
  }

  {
    const send: Link = { chainKey: b.randomBytes(32), counter: 0 };
    const receive: Link = { chainKey: send.chainKey, counter: 0 };
    let rootKey = b.randomBytes(32);
    let sides: [KeyPair, KeyPair] = [keyPair(b), keyPair(b)];
    out.push({
      op: 'ping-pong',
      label: 'floor: ping-pong message, 100 B',
      note: 'same-direction + 2 X25519, 1 key generation, 2 HKDF',
      task: {
        run() {
          const [sender, receiver] = sides;
          symmetricMessage(b, send, receive, sender.publicKey, 100);
          const step = dhRatchetStep(b, rootKey, receiver, fresh(sender.publicKey));
          rootKey = step.rootKey;
          sides = [step.own, sender];
        },
      },
    });
  }

  out.push({
    op: 'skipped-1000',
    label: 'floor: 1,001 chain steps + decode + open',
    note: '3,003 HMAC, AEAD open, CBOR decode',
    task: {
      prepare() {
        const start = b.randomBytes(32);
        let ck = start;
        for (let j = 0; j < 1000; j++) ck = chainStep(b, ck).next;
        const s = chainStep(b, ck);
        const header = encodeCbor([keyPair(b).publicKey, 0, 1000]);
        const wire = encodeCbor([1, 2, header, b.aeadSeal(s.key, s.nonce, new Uint8Array(160), concatBytes(AD_PREFIX, header))]);
        return { start, wire };
      },
      run(ctx) {
        const { start, wire } = ctx as { start: Uint8Array; wire: Uint8Array };
        const fields = decodeCbor(wire, 'floor message', 1 << 21) as [number, number, Uint8Array, Uint8Array];
        decodeCbor(fields[2], 'floor header', 64);
        let ck = start;
        for (let j = 0; j < 1000; j++) ck = chainStep(b, ck).next;
        const s = chainStep(b, ck);
        if (!b.aeadOpen(s.key, s.nonce, fields[3], concatBytes(AD_PREFIX, fields[2]))) throw new Error('floor: AEAD open failed');
      },
    },
    overrides: { maxIterations: quick ? 20 : 200 },
  });

  const keys = setupKeys(b);
  out.push({
    op: 'setup',
    label: 'floor: PQXDH both sides + first message',
    note: '4 Ed25519 verify, 11 X25519, 3 keygen, ML-KEM encaps+decaps',
    task: { run: () => setupFloor(b, keys) },
    overrides: { maxIterations: quick ? 5 : 40 },
  });
  return out;
}

const backendOf = (variant: Backend) => (variant === 'node' ? nodeBackend : nobleBackend);

/** The composites on both backends, for the interleaved comparison with Parley's operations. */
export function floorEntries(quick: boolean): Entry[] {
  return BACKENDS.flatMap((variant) =>
    floorComposites(backendOf(variant), quick).map((c) => ({
      meta: { section: 'floor', subject: 'floor', variant, op: c.op, label: c.label, note: c.note } as const,
      task: c.task,
      ...(c.overrides ? { overrides: c.overrides } : {}),
    })),
  );
}

/** Single primitives on both backends, for reading the composites. */
export async function runFloorPrimitives(runner: Runner): Promise<void> {
  for (const variant of BACKENDS) await runPrimitivesFor(runner, variant);
}

async function runPrimitivesFor(runner: Runner, variant: Backend): Promise<void> {
  const b = backendOf(variant);
  const base = { section: 'floor', subject: 'floor', variant } as const;
  const chainKey = b.randomBytes(32);
  const key = b.randomBytes(32);
  const nonce = b.randomBytes(12);
  const ad = b.randomBytes(64);

  const payload100 = payload(100);
  const payload1k = payload(1024);
  const cborMessage = [1, 2, encodeCbor([b.randomBytes(32), 3, 17]), b.randomBytes(176)];
  const dhPrivate = b.randomBytes(32);
  const dhPublic = keyPair(b).publicKey;
  const seed = b.randomBytes(32);
  const signingKey = b.ed25519PublicKey(seed);
  const msg64 = payload(64);
  const signature = b.ed25519Sign(seed, msg64);
  const kem = b.mlkemKeygen(b.randomBytes(64));
  const random32 = b.randomBytes(32);
  const kemCt = b.mlkemEncapsulate(kem.publicKey, random32).ciphertext;
  const prims: [string, string, () => unknown][] = [
    ['prim-chain-step', 'HMAC chain step (3 HMAC-SHA256)', () => chainStep(b, chainKey)],
    ['prim-hmac', 'HMAC-SHA256 of 1 B', () => b.hmacSha256(chainKey, MESSAGE_KEY)],
    ['prim-aead-100', 'ChaCha20-Poly1305 seal+open, 100 B', () => b.aeadOpen(key, nonce, b.aeadSeal(key, nonce, payload100, ad), ad)],
    ['prim-aead-1024', 'ChaCha20-Poly1305 seal+open, 1 KiB', () => b.aeadOpen(key, nonce, b.aeadSeal(key, nonce, payload1k, ad), ad)],
    ['prim-cbor', 'CBOR encode+strict decode, ratchet message (100 B)', () => decodeCbor(encodeCbor(cborMessage), 'floor', 1 << 21)],
    ['prim-x25519', 'X25519 DH (fresh public key bytes)', () => b.x25519(dhPrivate, fresh(dhPublic))],
    ['prim-x25519-keygen', 'X25519 key generation', () => keyPair(b)],
    ['prim-ed25519-sign', 'Ed25519 sign, 64 B', () => b.ed25519Sign(seed, msg64)],
    ['prim-ed25519-verify', 'Ed25519 verify, 64 B', () => b.ed25519Verify(fresh(signingKey), msg64, signature)],
    ['prim-mlkem-encaps', 'ML-KEM-768 encapsulate', () => b.mlkemEncapsulate(kem.publicKey, random32)],
    ['prim-mlkem-decaps', 'ML-KEM-768 decapsulate', () => b.mlkemDecapsulate(kemCt, kem.secretKey)],
    ['prim-hkdf', 'HKDF-SHA256, 64 B out', () => b.hkdfSha256(chainKey, chainKey, ROOT_INFO, 64)],
  ];
  for (const [op, label, fn] of prims) await runner.time({ ...base, op, label }, { run: fn });
}

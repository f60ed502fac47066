/**
 * seal.json against spec/12-sealed-sender.md §3-§4, written from the spec on
 * the verifier's own HPKE (lib/hpke.mjs) and CBOR (cborg): token hashes,
 * every intermediate value of a mode-1 seal, and the open procedure with
 * its refusal codes.
 */
import { decode, encode, readArray, readBytes, readUint } from '../lib/cbor.mjs';
import { refuses, same } from '../lib/check.mjs';
import { ProtocolError, fail } from '../lib/errors.mjs';
import { equal, fromHex as h, utf8 } from '../lib/hex.mjs';
import { deriveKeyPair, exportSecret, openOnce, setupReceiver, setupSender } from '../lib/hpke.mjs';
import { seal as aeadSeal, open as aeadOpen, sha256 } from '../lib/primitives.mjs';

const CHECK_CONTEXT = utf8('Parley v2 seal check');
/** MAX_MESSAGE_BYTES (spec/05 §2) + 256: the largest seal. */
const MAX_SEAL_BYTES = (1 << 20) + (1 << 16) + 4096 + 256;

const tokenHash = (account, token) => sha256(encode(['Parley v2 delivery token', account, token]));
const info = (certHash) => encode(['Parley v2 seal', certHash]);
const aad = (th, tag) => encode([th, tag]);

/** Decoding of §4.1: version before field count, then type, mode, sizes. */
function decodeSeal(bytes) {
  const v = decode(bytes, 'Seal', MAX_SEAL_BYTES);
  if (!Array.isArray(v) || v.length < 1) fail('MALFORMED', 'Seal: not an array');
  if (typeof v[0] !== 'number') fail('MALFORMED', 'Seal: version');
  if (v[0] !== 2) fail('UNSUPPORTED_VERSION', `Seal: version ${v[0]}`);
  readArray(v, 'Seal', 6);
  if (v[1] !== 5) fail('MALFORMED', 'Seal: type');
  if (v[2] !== 1 && v[2] !== 2) fail('MALFORMED', 'Seal: mode');
  const enc = readBytes(v[3], 'enc', 32);
  const check = v[2] === 1 ? readBytes(v[4], 'check', 8) : v[4] === null ? null : fail('MALFORMED', 'Seal: mode 2 check');
  const ct = readBytes(v[5], 'ciphertext', { min: 16, max: MAX_SEAL_BYTES });
  return { mode: v[2], enc, check, ct };
}

/** §4.2: try candidates in order; the first whose check matches is opened. */
function openSeal(t) {
  const s = decodeSeal(h(t.seal));
  if (s.mode !== 1) fail('SEAL_FAILED', 'mode');
  const inf = info(h(t.recipientCertificateHash));
  const ad = aad(h(t.tokenHash), t.frankingTag === null ? null : h(t.frankingTag));
  for (const c of t.candidates.slice(0, 32)) {
    const r = setupReceiver(s.enc, h(t.skR), inf, h(c.identityKey));
    if (!equal(exportSecret(r, CHECK_CONTEXT, 8), s.check)) continue;
    let pt;
    try {
      pt = openOnce(r, ad, s.ct);
    } catch (e) {
      if (e instanceof ProtocolError) fail('SEAL_FAILED', 'aead');
      throw e;
    }
    let inner;
    try {
      inner = readArray(decode(pt, 'SealedInner', MAX_SEAL_BYTES), 'SealedInner', 2);
      readUint(inner[0], 'senderDeviceId');
    } catch (e) {
      if (e instanceof ProtocolError) fail('SEAL_FAILED', 'inner');
      throw e;
    }
    if (inner[0] !== c.deviceId) fail('SEAL_FAILED', 'device id');
    return inner[1];
  }
  fail('SEAL_FAILED', 'no candidate');
}

const GROUP_AAD = utf8('Parley v2 group payload');
const ZERO_NONCE = new Uint8Array(12);

/** §10: the wrap names the payload by digest; the payload opens under the wrap's key. */
function openGroupPayload(wrapBytes, payload) {
  const v = decode(wrapBytes, 'GroupKeyWrap', 71);
  if (!Array.isArray(v) || v.length < 1 || typeof v[0] !== 'number') fail('MALFORMED', 'GroupKeyWrap');
  if (v[0] !== 2) fail('UNSUPPORTED_VERSION', 'GroupKeyWrap version');
  readArray(v, 'GroupKeyWrap', 4);
  if (v[1] !== 6) fail('MALFORMED', 'GroupKeyWrap type');
  const key = readBytes(v[2], 'key', 32);
  const digest = readBytes(v[3], 'payloadDigest', 32);
  if (payload.length < 16) fail('SEAL_FAILED', 'payload size');
  if (!equal(sha256(payload), digest)) fail('SEAL_FAILED', 'payload digest');
  const message = aeadOpen(key, ZERO_NONCE, payload, GROUP_AAD);
  if (message === null) fail('SEAL_FAILED', 'payload aead');
  return message;
}

/** §5.2: [2, 7, seal, payload]; version before field count, then type, a non-empty seal, a payload of at least a tag. */
function decodeSealedGroupEnvelope(bytes) {
  const v = decode(bytes, 'SealedGroupEnvelope', MAX_SEAL_BYTES + (1 << 20) + (1 << 16) + 4096 + 32);
  if (!Array.isArray(v) || v.length < 1 || typeof v[0] !== 'number') fail('MALFORMED', 'SealedGroupEnvelope');
  if (v[0] !== 2) fail('UNSUPPORTED_VERSION', 'SealedGroupEnvelope version');
  readArray(v, 'SealedGroupEnvelope', 4);
  if (v[1] !== 7) fail('MALFORMED', 'SealedGroupEnvelope type');
  const seal = readBytes(v[2], 'seal', { min: 1, max: MAX_SEAL_BYTES });
  const payload = readBytes(v[3], 'payload', { min: 16, max: (1 << 20) + (1 << 16) + 4096 + 16 });
  return { seal, payload };
}

export function checkSeal(f) {
  for (const g of f.groups('SealedGroupEnvelope')) {
    for (const t of g.tests) {
      f.run(t, () => {
        same('envelope', encode([2, 7, h(t.seal), h(t.payload)]), t.envelope);
        const d = decodeSealedGroupEnvelope(h(t.envelope));
        same('seal', d.seal, t.seal);
        same('payload', d.payload, t.payload);
      });
    }
  }
  for (const g of f.groups('SealedGroupEnvelopeInvalid')) {
    for (const t of g.tests) f.run(t, () => refuses('decode', () => decodeSealedGroupEnvelope(h(t.envelope)), t.error));
  }
  for (const g of f.groups('GroupPayload')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const payload = aeadSeal(h(t.key), ZERO_NONCE, h(t.message), GROUP_AAD);
        same('payload', payload, t.payload);
        same('payloadDigest', sha256(payload), t.payloadDigest);
        same('wrap', encode([2, 6, h(t.key), sha256(payload)]), t.wrap);
        same('opened', openGroupPayload(h(t.wrap), h(t.payload)), t.message);
      });
    }
  }
  for (const g of f.groups('GroupPayloadInvalid')) {
    for (const t of g.tests) f.run(t, () => refuses('open payload', () => openGroupPayload(h(t.wrap), h(t.payload)), t.error));
  }
  for (const g of f.groups('DeliveryTokenHash')) {
    for (const t of g.tests) f.run(t, () => same('tokenHash', tokenHash(h(t.recipientAccount), h(t.token)), t.tokenHash));
  }
  for (const g of f.groups('SealValid')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const tag = t.frankingTag === null ? null : h(t.frankingTag);
        same('info', info(h(t.recipientCertificateHash)), t.info);
        same('aad', aad(h(t.tokenHash), tag), t.aad);
        const inner = encode([t.senderDeviceId, h(t.message)]);
        same('sealedInner', inner, t.sealedInner);
        const s = setupSender(deriveKeyPair(h(t.ikmE)).sk, h(t.pkR), h(t.info), h(t.skS));
        same('enc', s.enc, t.enc);
        same('check', exportSecret(s, CHECK_CONTEXT, 8), t.check);
        const ct = aeadSeal(s.key, s.baseNonce, inner, h(t.aad));
        same('ciphertext', ct, t.ciphertext);
        same('seal', encode([2, 5, 1, s.enc, exportSecret(s, CHECK_CONTEXT, 8), ct]), t.seal);
        same('overhead', h(t.seal).length - h(t.message).length, t.overhead);
        const opened = openSeal({ ...t, candidates: [{ deviceId: t.senderDeviceId, identityKey: t.pkS }] });
        same('opened message', opened, t.message);
      });
    }
  }
  for (const g of f.groups('SealOpenInvalid')) {
    for (const t of g.tests) f.run(t, () => refuses('open', () => openSeal(t), t.error));
  }
}

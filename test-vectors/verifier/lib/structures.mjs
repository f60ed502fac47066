/**
 * The public structures of spec/02-keys.md §3, §5, §6 and the messages of
 * spec/05-wire-format.md §3-§4: encoders, strict decoders, verification.
 */
import { decode, encode, readArray, readBool, readBytes, readOptional, readUint, readVersion } from './cbor.mjs';
import { Label, Limits, MessageType, Sizes, VERSION } from './constants.mjs';
import { fail } from './errors.mjs';
import { equal } from './hex.mjs';
import { checkX25519PublicKey, ed25519Verify } from './primitives.mjs';

// ---- device certificates (02 §3) -----------------------------------------

export const certificateArray = (c) => [c.version, c.accountKey, c.deviceId, c.signingKey, c.identityKey, c.signature];
export const certificateSignedBytes = (c) =>
  encode([Label.deviceCertificate, c.version, c.accountKey, c.deviceId, c.signingKey, c.identityKey]);

/** A versioned structure: the version is read before the field count (spec/05 §6.6). */
function readVersioned(v, what, fields) {
  if (!Array.isArray(v) || v.length === 0) fail('MALFORMED', `${what}: not an array`);
  const version = readVersion(v[0], what);
  return { f: readArray(v, what, fields), version };
}

export function certificateFromArray(v) {
  const { f, version } = readVersioned(v, 'DeviceCertificate', 6);
  const accountKey = readBytes(f[1], 'accountKey', 32);
  const deviceId = readUint(f[2], 'deviceId', Limits.MAX_DEVICE_ID);
  if (deviceId === 0) fail('MALFORMED', 'deviceId 0');
  const signingKey = readBytes(f[3], 'signingKey', 32);
  const identityKey = checkX25519PublicKey(readBytes(f[4], 'identityKey', 32), 'identityKey');
  const signature = readBytes(f[5], 'signature', 64);
  return { version, accountKey, deviceId, signingKey, identityKey, signature };
}

export const decodeCertificate = (bytes) => certificateFromArray(decode(bytes, 'DeviceCertificate', Limits.MAX_BUNDLE_BYTES));

export function verifyCertificate(c, expectedAccountKey) {
  if (expectedAccountKey && !equal(expectedAccountKey, c.accountKey)) fail('BAD_CERTIFICATE', 'another account');
  if (!ed25519Verify(c.accountKey, certificateSignedBytes(c), c.signature)) fail('BAD_CERTIFICATE', 'signature');
  return c;
}

// ---- prekeys (02 §5) ------------------------------------------------------

function readPreKeyId(v, field) {
  const id = readUint(v, field, Limits.MAX_PREKEY_ID);
  if (id === 0) fail('MALFORMED', `${field}: id 0`);
  return id;
}

export const signedPreKeySignedBytes = (id, publicKey) => encode([Label.signedPreKey, id, publicKey]);
export const kemPreKeySignedBytes = (id, publicKey, lastResort) => encode([Label.kemPreKey, id, publicKey, lastResort]);
export const signedPreKeyArray = (k) => [k.id, k.publicKey, k.signature];
export const oneTimePreKeyArray = (k) => [k.id, k.publicKey];
export const kemPreKeyArray = (k) => [k.id, k.publicKey, k.lastResort, k.signature];

export function signedPreKeyFromArray(v) {
  const f = readArray(v, 'SignedPreKey', 3);
  return {
    id: readPreKeyId(f[0], 'signedPreKey.id'),
    publicKey: checkX25519PublicKey(readBytes(f[1], 'signedPreKey.publicKey', 32), 'signedPreKey.publicKey'),
    signature: readBytes(f[2], 'signedPreKey.signature', 64),
  };
}

export function oneTimePreKeyFromArray(v) {
  const f = readArray(v, 'OneTimePreKey', 2);
  return {
    id: readPreKeyId(f[0], 'oneTimePreKey.id'),
    publicKey: checkX25519PublicKey(readBytes(f[1], 'oneTimePreKey.publicKey', 32), 'oneTimePreKey.publicKey'),
  };
}

export function kemPreKeyFromArray(v) {
  const f = readArray(v, 'KemPreKey', 4);
  return {
    id: readPreKeyId(f[0], 'kemPreKey.id'),
    publicKey: readBytes(f[1], 'kemPreKey.publicKey', Sizes.mlkemPublicKey),
    lastResort: readBool(f[2], 'kemPreKey.lastResort'),
    signature: readBytes(f[3], 'kemPreKey.signature', 64),
  };
}

const structure = (what, fromArray) => (bytes) => fromArray(decode(bytes, what, Limits.MAX_BUNDLE_BYTES));
export const decodeSignedPreKey = structure('SignedPreKey', signedPreKeyFromArray);
export const decodeOneTimePreKey = structure('OneTimePreKey', oneTimePreKeyFromArray);
export const decodeKemPreKey = structure('KemPreKey', kemPreKeyFromArray);

export function verifySignedPreKey(signingKey, k) {
  if (!ed25519Verify(signingKey, signedPreKeySignedBytes(k.id, k.publicKey), k.signature)) fail('BAD_SIGNATURE', 'signed prekey');
}

export function verifyKemPreKey(signingKey, k) {
  if (!ed25519Verify(signingKey, kemPreKeySignedBytes(k.id, k.publicKey, k.lastResort), k.signature)) fail('BAD_SIGNATURE', 'KEM prekey');
}

// ---- bundles (02 §6) ------------------------------------------------------

export function bundleArray(b) {
  return [
    b.version,
    certificateArray(b.certificate),
    signedPreKeyArray(b.signedPreKey),
    b.oneTimePreKey ? oneTimePreKeyArray(b.oneTimePreKey) : null,
    kemPreKeyArray(b.kemPreKey),
  ];
}

export function decodeBundle(bytes) {
  const { f, version } = readVersioned(decode(bytes, 'PreKeyBundle', Limits.MAX_BUNDLE_BYTES), 'PreKeyBundle', 5);
  return {
    version,
    certificate: certificateFromArray(f[1]),
    signedPreKey: signedPreKeyFromArray(f[2]),
    oneTimePreKey: readOptional(f[3], oneTimePreKeyFromArray),
    kemPreKey: kemPreKeyFromArray(f[4]),
  };
}

export function verifyBundle(b, expectedAccountKey) {
  verifyCertificate(b.certificate, expectedAccountKey);
  verifySignedPreKey(b.certificate.signingKey, b.signedPreKey);
  verifyKemPreKey(b.certificate.signingKey, b.kemPreKey);
}

// ---- messages (05 §3-§4) --------------------------------------------------

export const encodeHeader = (h) => encode([h.ratchetKey, h.previousCounter, h.counter]);

export function decodeHeader(bytes) {
  const f = readArray(decode(bytes, 'Header', Limits.MAX_HEADER_BYTES), 'Header', 3);
  return {
    ratchetKey: checkX25519PublicKey(readBytes(f[0], 'header.ratchetKey', 32), 'header.ratchetKey'),
    // A sender never uses counter 2^32-1 (spec/04 §3.3), so a header carries at most 2^32-2 and counter + 1 stays a uint32.
    previousCounter: readUint(f[1], 'header.previousCounter', Limits.MAX_MESSAGE_COUNTER),
    counter: readUint(f[2], 'header.counter', Limits.MAX_MESSAGE_COUNTER),
  };
}

export const encodeRatchetMessage = (headerBytes, ciphertext) => encode([VERSION, MessageType.ratchet, headerBytes, ciphertext]);

export function encodePreKeyMessage(certificate, use, kemCiphertext, messageBytes) {
  return encode([
    VERSION,
    MessageType.preKey,
    certificateArray(certificate),
    use.baseKey,
    use.signedPreKeyId,
    use.oneTimePreKeyId,
    use.kemPreKeyId,
    kemCiphertext,
    messageBytes,
  ]);
}

/** The handshake fields of a PreKeyMessage, encoded (their digest binds a repeated PreKeyMessage to its session). */
export function preKeyFieldsBytes(m) {
  return encode([
    certificateArray(m.initiatorCertificate),
    m.use.baseKey,
    m.use.signedPreKeyId,
    m.use.oneTimePreKeyId,
    m.use.kemPreKeyId,
    m.kemCiphertext,
  ]);
}

/** spec/05 §2. `only`: the one type an embedded message may have, checked before any other field is read. */
export function decodeMessage(bytes, only = null) {
  const f = decode(bytes, 'Message', Limits.MAX_MESSAGE_BYTES);
  if (!Array.isArray(f) || f.length < 2) fail('MALFORMED', 'Message: no version and type');
  if (f[0] === 2 && only === null && f[1] === MessageType.ratchet) return ratchetV2FromFields(f);
  // PreKeyMessageV2 has 10 fields (formats-v2 §3.2); its handshake is checked by versions.json.
  if (f[0] === 2 && only === null && f[1] === MessageType.preKey) readArray(f, 'PreKeyMessageV2', 10);
  readVersion(f[0], 'Message');
  if (only !== null && f[1] !== only) fail('MALFORMED', 'embedded message is not a RatchetMessage');
  if (f[1] === MessageType.ratchet) return ratchetFromFields(f);
  if (f[1] === MessageType.preKey) return preKeyFromFields(f);
  fail('MALFORMED', 'Message: unknown type');
}

/** RatchetMessageV2 = [2, 2, EncryptedHeader: bstr .size 60, ciphertext: bstr (>= 16)] (spec/13-ratchet-v2.md §4). */
export function ratchetV2FromFields(f) {
  readArray(f, 'RatchetMessageV2', 4);
  const header = readBytes(f[2], 'header', 60);
  const ciphertext = readBytes(f[3], 'ciphertext', { min: Sizes.tag, max: Limits.MAX_MESSAGE_BYTES });
  return { type: 'ratchet2', header, ciphertext };
}

function ratchetFromFields(f) {
  readArray(f, 'RatchetMessage', 4);
  const headerBytes = readBytes(f[2], 'header', { max: Limits.MAX_HEADER_BYTES });
  const ciphertext = readBytes(f[3], 'ciphertext', { min: Sizes.tag, max: Limits.MAX_MESSAGE_BYTES });
  return { type: 'ratchet', header: decodeHeader(headerBytes), headerBytes, ciphertext };
}

function preKeyFromFields(f) {
  readArray(f, 'PreKeyMessage', 9);
  const initiatorCertificate = certificateFromArray(f[2]);
  const baseKey = checkX25519PublicKey(readBytes(f[3], 'baseKey', 32), 'baseKey');
  const use = {
    baseKey,
    signedPreKeyId: readPreKeyId(f[4], 'signedPreKeyId'),
    oneTimePreKeyId: readOptional(f[5], (v) => readPreKeyId(v, 'oneTimePreKeyId')),
    kemPreKeyId: readPreKeyId(f[6], 'kemPreKeyId'),
  };
  const kemCiphertext = readBytes(f[7], 'kemCiphertext', Sizes.mlkemCiphertext);
  const messageBytes = readBytes(f[8], 'message', { max: Limits.MAX_MESSAGE_BYTES });
  // The embedded message's version and type come first; nothing else of a non-RatchetMessage is parsed (spec/05 §4.2).
  const inner = decodeMessage(messageBytes, MessageType.ratchet);
  return { type: 'prekey', initiatorCertificate, use, kemCiphertext, message: inner, messageBytes };
}

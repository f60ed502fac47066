// Sealed group sends (spec/12-sealed-sender.md §10): one payload stored once,
// a 71-byte key wrap sealed to each of 100 recipient devices; every device
// opens its seal, checks the payload against the wrap's digest, and decrypts
// the real sender-key group message inside; the sealed sender must be the
// group message's sender. A swapped payload is refused by every device.
import { describe, expect, it } from 'vitest';
import {
  Account,
  type DeviceIdentity,
  type GroupMember,
  GroupSession,
  certificateHash,
  cryptoProvider,
  fromUtf8,
  memberOf,
  seal,
  toHex,
  utf8,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { codeOf, expectCode } from './support/errors.ts';

const provider = cryptoProvider(nodeBackend);
const RECIPIENTS = 100;

describe('a group message sealed to 100 devices', () => {
  const sender = Account.generate(provider).createDevice(1, provider);
  const devices: DeviceIdentity[] = Array.from({ length: RECIPIENTS }, () => Account.generate(provider).createDevice(1, provider));
  const members = [sender, ...devices].map((d) => memberOf(d.certificate));
  const senderSession = GroupSession.create(sender, members, { provider });
  const sessions = devices.map((d) => GroupSession.create(d, members, { groupId: senderSession.groupId, provider }));
  const distribution = senderSession.distribution();
  for (const s of sessions) s.processDistribution(distribution.bytes, sender.certificate);
  // Each recipient account granted the sender a token.
  const tokens = devices.map(() => seal.newDeliveryToken(provider));
  const tokenHashes = devices.map((d, i) => seal.deliveryTokenHash(d.accountKey, tokens[i] as Uint8Array, provider));

  const { message } = senderSession.encrypt(utf8('hello, hundred'));
  const { payload, wrap } = seal.sealGroupPayload(message, provider);
  const sealedWraps = devices.map((d, i) =>
    seal.sealToContact(
      {
        recipientIdentityKey: d.certificate.identityKey,
        recipientCertificateHash: certificateHash(d.certificate, provider),
        senderIdentityPrivateKey: sender.identityKeyPair.privateKey,
        senderDeviceId: sender.deviceId,
        tokenHash: tokenHashes[i] as Uint8Array,
        frankingTag: null,
        message: wrap,
      },
      provider,
    ),
  );

  const open = (i: number, sealed: Uint8Array, withPayload: Uint8Array) => {
    const d = devices[i] as DeviceIdentity;
    const opened = seal.openContactSeal(
      {
        seal: sealed,
        recipientIdentityPrivateKey: d.identityKeyPair.privateKey,
        recipientCertificateHash: certificateHash(d.certificate, provider),
        tokenHash: tokenHashes[i] as Uint8Array,
        frankingTag: null,
        candidates: [{ deviceId: sender.deviceId, identityKey: sender.certificate.identityKey }],
      },
      provider,
    );
    expect(seal.isGroupKeyWrap(opened.message)).toBe(true);
    const groupMessage = seal.openGroupPayload(opened.message, withPayload, provider);
    const result = (sessions[i] as GroupSession).decrypt(groupMessage);
    // The group layer's sender must be the device the seal authenticated (else SEAL_SENDER_MISMATCH in the client).
    const sealedSender: GroupMember = { accountKey: sender.accountKey, deviceId: opened.senderDeviceId };
    expect(toHex(result.sender.accountKey)).toBe(toHex(sealedSender.accountKey));
    expect(result.sender.deviceId).toBe(sealedSender.deviceId);
    return fromUtf8(result.plaintext);
  };

  it('every device opens its wrap, the one payload and the group message', () => {
    for (let i = 0; i < RECIPIENTS; i++) expect(open(i, sealedWraps[i] as Uint8Array, payload)).toBe('hello, hundred');
  });

  it('costs one payload plus about 140 bytes per device', () => {
    expect(wrap.length).toBe(seal.GROUP_KEY_WRAP_BYTES);
    const perDevice = sealedWraps.map((s) => s.length);
    for (const n of perDevice) expect(n).toBeLessThanOrEqual(seal.GROUP_KEY_WRAP_BYTES + 72);
    const storeOnce = payload.length + perDevice.reduce((a, b) => a + b, 0);
    // Sealing the whole group message to each device instead: the message plus the seal, 100 times.
    const perDeviceWhole = RECIPIENTS * (message.length + 72);
    expect(storeOnce).toBeLessThan(perDeviceWhole);
  });

  it('a payload other than the one the wraps name is refused by every device, before any group state is touched', () => {
    const other = seal.sealGroupPayload(senderSession.encrypt(utf8('another')).message, provider).payload;
    for (let i = 0; i < RECIPIENTS; i += 9) {
      const before = toHex((sessions[i] as GroupSession).serialize());
      expect(codeOf(() => open(i, sealedWraps[i] as Uint8Array, other))).toBe('SEAL_FAILED');
      expect(toHex((sessions[i] as GroupSession).serialize())).toBe(before);
    }
    const flipped = payload.slice();
    flipped[3] = (flipped[3] ?? 0) ^ 1;
    expect(expectCode(() => seal.openGroupPayload(wrap, flipped, provider), 'SEAL_FAILED').details.reason).toBe('payload-digest');
  });

  it('a wrap decodes strictly', () => {
    expect(codeOf(() => seal.decodeGroupKeyWrap(wrap.slice(0, 70)))).toBe('MALFORMED');
    const bad = wrap.slice();
    bad[2] = 5;
    expect(codeOf(() => seal.decodeGroupKeyWrap(bad))).toBe('MALFORMED');
  });
});

describe('the SealedGroupEnvelope a device receives: [2, 7, seal, payload]', () => {
  const framed = seal.encodeSealedGroupEnvelope({ seal: new Uint8Array(142).fill(1), payload: new Uint8Array(40).fill(2) });

  it('round-trips and is recognised by its first bytes, a Seal is not', () => {
    expect(seal.looksLikeSealedGroupEnvelope(framed)).toBe(true);
    expect(Array.from(framed.slice(0, 3))).toEqual([0x84, 2, seal.SEALED_GROUP_ENVELOPE_TYPE]);
    const back = seal.decodeSealedGroupEnvelope(framed);
    expect(back.seal).toEqual(new Uint8Array(142).fill(1));
    expect(back.payload).toEqual(new Uint8Array(40).fill(2));
  });

  it('refuses another type, a later version, a short payload, an empty seal, and an oversized frame', () => {
    const wrongType = framed.slice();
    wrongType[2] = 6;
    expect(codeOf(() => seal.decodeSealedGroupEnvelope(wrongType))).toBe('MALFORMED');
    const later = framed.slice();
    later[1] = 3;
    expect(codeOf(() => seal.decodeSealedGroupEnvelope(later))).toBe('UNSUPPORTED_VERSION');
    const shortPayload = seal.encodeSealedGroupEnvelope({ seal: new Uint8Array(142), payload: new Uint8Array(15) });
    expect(codeOf(() => seal.decodeSealedGroupEnvelope(shortPayload))).toBe('MALFORMED');
    const noSeal = seal.encodeSealedGroupEnvelope({ seal: new Uint8Array(0), payload: new Uint8Array(40) });
    expect(codeOf(() => seal.decodeSealedGroupEnvelope(noSeal))).toBe('MALFORMED');
    const huge = new Uint8Array(seal.MAX_SEALED_GROUP_ENVELOPE_BYTES + 1);
    huge.set(framed.slice(0, 3));
    expect(['OVERSIZED', 'MALFORMED']).toContain(codeOf(() => seal.decodeSealedGroupEnvelope(huge)));
  });
});

/**
 * Wire schemas (TypeBox) for every route: they validate requests, serialize
 * responses and generate spec/openapi.json. spec/09-relay.md §4.
 *
 * Bounds here are hard wire bounds, independent of configuration; the
 * configurable limits (config.ts) are checked in the handlers and answered
 * with coded errors (so a configured limit is never shadowed by a schema).
 */
import { limits as coreLimits } from '@parley/core';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { base64UrlLength } from './http/encoding.ts';

/** Byte strings travel as unpadded base64url. */
export function Bytes(maxBytes: number, description: string, exactBytes?: number) {
  return Type.String({
    pattern: '^[A-Za-z0-9_-]*$',
    ...(exactBytes === undefined
      ? { maxLength: base64UrlLength(maxBytes) }
      : { minLength: base64UrlLength(exactBytes), maxLength: base64UrlLength(exactBytes) }),
    contentEncoding: 'base64url',
    description,
  });
}

export const AccountKey = Type.String({
  pattern: '^[A-Za-z0-9_-]{43}$',
  description: 'An account: its 32-byte Ed25519 account key, base64url',
});

export const DeviceId = Type.Integer({ minimum: 1, maximum: coreLimits.MAX_DEVICE_ID, description: 'Device id, 1..2^31-1' });

/** Client-chosen envelope id: printable, short, unique per sender and recipient device. */
export const ClientId = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9._:-]+$',
  description: 'Client-chosen envelope id (idempotency key): 1-64 characters of [A-Za-z0-9._:-]',
});

export const Sha256 = Bytes(32, 'SHA-256 digest', 32);

/** Most prekeys of each kind in one upload request (pool limits are separate). */
export const MAX_ONE_TIME_PREKEYS_PER_UPLOAD = 1000;
export const MAX_KEM_PREKEYS_PER_UPLOAD = 100;
/** Wire bound on envelopes per send; the configured limit is usually lower. */
export const MAX_ENVELOPES_PER_SEND = 4096;
/** Wire bound on recipients of one fan-out (core's MAX_GROUP_MEMBER_DEVICES); the configured limit may be lower. */
export const MAX_FANOUT_RECIPIENTS = 5000;
export const MAX_ACKS_PER_REQUEST = 1000;
export const MAX_FETCH_LIMIT = 500;

const Certificate = Bytes(coreLimits.MAX_BUNDLE_BYTES, 'DeviceCertificate, canonical CBOR (core encodeCertificate)');
const SignedPreKey = Bytes(coreLimits.MAX_BUNDLE_BYTES, 'SignedPreKeyPublic, canonical CBOR (core encodeSignedPreKey)');
const SignedPreKeyV2 = Bytes(
  coreLimits.MAX_BUNDLE_BYTES,
  'SignedPreKeyV2 of the same key as signedPreKey (versions and the v2 signature), canonical CBOR (core encodeSignedPreKeyV2); only with signedPreKey',
);
const OneTimePreKey = Bytes(coreLimits.MAX_BUNDLE_BYTES, 'OneTimePreKeyPublic, canonical CBOR (core encodeOneTimePreKey)');
const KemPreKey = Bytes(coreLimits.MAX_BUNDLE_BYTES, 'KemPreKeyPublic, canonical CBOR (core encodeKemPreKey)');

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'Stable error code (spec/09-relay.md §9)' }),
    error: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { description: 'Every error has this shape' },
);

/** Error responses every authenticated route may give. */
export const errorResponses = (...statuses: number[]): Record<number, TSchema> =>
  Object.fromEntries([400, 401, 413, 429, 500, ...statuses].map((s) => [s, ErrorResponse]));

// ---- devices -------------------------------------------------------------

export const PreKeyUploadBody = Type.Object(
  {
    signedPreKey: Type.Optional(SignedPreKey),
    signedPreKeyV2: Type.Optional(SignedPreKeyV2),
    lastResortKemPreKey: Type.Optional(KemPreKey),
    oneTimePreKeys: Type.Optional(Type.Array(OneTimePreKey, { maxItems: MAX_ONE_TIME_PREKEYS_PER_UPLOAD })),
    kemPreKeys: Type.Optional(Type.Array(KemPreKey, { maxItems: MAX_KEM_PREKEYS_PER_UPLOAD, description: 'One-time KEM prekeys' })),
  },
  { additionalProperties: false },
);
export type PreKeyUploadBody = Static<typeof PreKeyUploadBody>;

export const RegisterDeviceBody = Type.Object(
  {
    certificate: Certificate,
    signedPreKey: SignedPreKey,
    signedPreKeyV2: Type.Optional(SignedPreKeyV2),
    lastResortKemPreKey: KemPreKey,
    oneTimePreKeys: Type.Optional(Type.Array(OneTimePreKey, { maxItems: MAX_ONE_TIME_PREKEYS_PER_UPLOAD })),
    kemPreKeys: Type.Optional(Type.Array(KemPreKey, { maxItems: MAX_KEM_PREKEYS_PER_UPLOAD })),
  },
  { additionalProperties: false },
);
export type RegisterDeviceBody = Static<typeof RegisterDeviceBody>;

export const PreKeyCounts = Type.Object({
  oneTimePreKeys: Type.Integer({ description: 'One-time X25519 prekeys stored' }),
  kemPreKeys: Type.Integer({ description: 'One-time ML-KEM prekeys stored' }),
  signedPreKeyId: Type.Integer(),
  signedPreKeyV2: Type.Boolean({ description: 'The current signed prekey has its v2 form (a v2 device uploads it again when not)' }),
  lastResortKemPreKeyId: Type.Integer(),
});
export type PreKeyCounts = Static<typeof PreKeyCounts>;

export const PreKeyUploadResponse = Type.Composite([
  PreKeyCounts,
  Type.Object({
    ignored: Type.Integer({ description: 'Keys not stored: already held, already handed out, or older than the current one' }),
  }),
]);
export type PreKeyUploadResponse = Static<typeof PreKeyUploadResponse>;

export const RegisterDeviceResponse = Type.Object({
  status: Type.Union([Type.Literal('created'), Type.Literal('replaced'), Type.Literal('unchanged')]),
  account: AccountKey,
  deviceId: DeviceId,
  preKeys: PreKeyUploadResponse,
});
export type RegisterDeviceResponse = Static<typeof RegisterDeviceResponse>;

export const AccountParams = Type.Object({ account: AccountKey });
export const DeviceParams = Type.Object({
  account: AccountKey,
  deviceId: Type.String({ pattern: '^[1-9][0-9]{0,9}$', description: 'Device id' }),
});

export const DeviceListResponse = Type.Object({
  account: AccountKey,
  devices: Type.Array(
    Type.Object({
      deviceId: DeviceId,
      certificate: Certificate,
      certificateHash: Sha256,
      registeredAt: Type.Integer({ description: 'Milliseconds since the epoch' }),
    }),
  ),
});
export type DeviceListResponse = Static<typeof DeviceListResponse>;

// ---- bundles -------------------------------------------------------------

export const BundleParams = Type.Object({
  account: AccountKey,
  deviceId: Type.String({ pattern: '^(\\*|[1-9][0-9]{0,9})$', description: "A device id, or '*' for every device of the account" }),
});

export const BundleResponse = Type.Object({
  account: AccountKey,
  bundles: Type.Array(
    Type.Object({
      deviceId: DeviceId,
      bundle: Bytes(coreLimits.MAX_BUNDLE_BYTES, 'PreKeyBundle, canonical CBOR (core encodeBundle)'),
      certificateHash: Sha256,
    }),
  ),
});
export type BundleResponse = Static<typeof BundleResponse>;

// ---- messages --------------------------------------------------------------

/** The franking tag a v2 sender supplies with an envelope; the relay franks it (spec/14-franking.md §4.2). */
export const FrankingTagField = Type.String({
  pattern: '^[A-Za-z0-9_-]{43}$',
  contentEncoding: 'base64url',
  description: "The envelope's 32-byte franking tag (v2 messages); with it the relay adds a frank to the delivery",
});

export const OutgoingMessage = Type.Object(
  {
    account: AccountKey,
    deviceId: DeviceId,
    id: ClientId,
    // No length in the schema: the configured limit (maxEnvelopeBytes) is checked in the handler and
    // answered 413 OVERSIZED; the route's body limit bounds what is read at all.
    envelope: Type.String({
      pattern: '^[A-Za-z0-9_-]*$',
      contentEncoding: 'base64url',
      description: "Opaque envelope (ciphertext) for this device, at most the relay's maxEnvelopeBytes (413 OVERSIZED)",
    }),
    frankingTag: Type.Optional(FrankingTagField),
    certificateHash: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]{43}$',
        description: 'SHA-256 of the certificate this envelope was encrypted for; a mismatch answers 410 STALE_DEVICES',
      }),
    ),
  },
  { additionalProperties: false },
);

export const SendBody = Type.Object(
  {
    messages: Type.Array(OutgoingMessage, { minItems: 1, maxItems: MAX_ENVELOPES_PER_SEND }),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, description: "At most the relay's message TTL (the default)" })),
  },
  { additionalProperties: false },
);
export type SendBody = Static<typeof SendBody>;

const CertificateHashField = Type.String({
  pattern: '^[A-Za-z0-9_-]{43}$',
  description: 'SHA-256 of the certificate the envelope was encrypted for; a mismatch answers 410 STALE_DEVICES',
});

export const FanoutBody = Type.Object(
  {
    id: ClientId,
    envelope: Type.String({
      pattern: '^[A-Za-z0-9_-]*$',
      contentEncoding: 'base64url',
      description: "Opaque envelope (a sender-key group message), the same for every recipient, at most the relay's maxEnvelopeBytes",
    }),
    frankingTag: Type.Optional(FrankingTagField),
    recipients: Type.Array(
      Type.Object(
        { account: AccountKey, deviceId: DeviceId, certificateHash: Type.Optional(CertificateHashField) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_FANOUT_RECIPIENTS },
    ),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, description: "At most the relay's message TTL (the default)" })),
  },
  { additionalProperties: false },
);
export type FanoutBody = Static<typeof FanoutBody>;

export const SendResponse = Type.Object({
  accepted: Type.Integer({ description: 'Envelopes the relay now holds (the same number on a retry)' }),
});
export type SendResponse = Static<typeof SendResponse>;

export const DeliveredMessage = Type.Object({
  seq: Type.Integer({ description: 'Relay sequence number: per-device order, and the acknowledgement handle' }),
  sender: Type.Object({ account: AccountKey, deviceId: DeviceId }),
  id: ClientId,
  serverTimestamp: Type.Integer(),
  expiresAt: Type.Integer(),
  envelope: Bytes(coreLimits.MAX_MESSAGE_BYTES, 'The envelope as sent'),
  delivery: Type.Optional(
    Type.Object(
      {
        envelopeId: Type.String({ description: '16 random bytes the relay assigned to this envelope (base64url)' }),
        acceptedAt: Type.Integer({ description: 'When the relay accepted the envelope (ms since the epoch)' }),
        frankKeyId: Type.Integer({ description: 'The frank key period: floor(acceptedAt / FRANK_KEY_PERIOD)' }),
        frank: Type.String({ description: 'HMAC-SHA256 under the frank key (base64url), spec/14-franking.md §4.2' }),
        frankingTag: Type.String({ description: 'The franking tag the sender supplied (base64url)' }),
      },
      { description: 'Present when the sender supplied a franking tag: what a report of this message carries' },
    ),
  ),
});
export type DeliveredMessage = Static<typeof DeliveredMessage>;

export const FetchQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_FETCH_LIMIT, default: 100 })),
    after: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Only messages with a larger seq' })),
  },
  { additionalProperties: false },
);

export const FetchResponse = Type.Object({
  messages: Type.Array(DeliveredMessage),
  more: Type.Boolean({ description: 'More messages wait after the last one returned' }),
});
export type FetchResponse = Static<typeof FetchResponse>;

export const AckBody = Type.Object(
  { seqs: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: MAX_ACKS_PER_REQUEST }) },
  { additionalProperties: false },
);
export type AckBody = Static<typeof AckBody>;

// ---- attachments ---------------------------------------------------------

export const AttachmentId = Type.String({ pattern: '^[A-Za-z0-9_-]{22}$', description: 'Attachment id (16 random bytes, base64url)' });
export const AttachmentParams = Type.Object({ id: AttachmentId });

export const CreateAttachmentBody = Type.Object(
  { size: Type.Integer({ minimum: 1, description: 'Exact size of the encrypted blob in bytes' }) },
  { additionalProperties: false },
);

export const UploadQuery = Type.Object(
  { offset: Type.Integer({ minimum: 0, description: 'Where this chunk starts; must equal the bytes already stored' }) },
  { additionalProperties: false },
);

export const UploadStatus = Type.Object({
  id: AttachmentId,
  size: Type.Integer(),
  offset: Type.Integer({ description: 'Bytes durably stored: the next chunk starts here' }),
  complete: Type.Boolean(),
  expiresAt: Type.Integer(),
});
export type UploadStatus = Static<typeof UploadStatus>;

// ---- websocket frames (documented in the spec; JSON text frames) -----------

export const WsAuthFrame = Type.Object(
  {
    type: Type.Literal('auth'),
    account: AccountKey,
    deviceId: DeviceId,
    signature: Bytes(64, 'Ed25519 signature over the websocket auth bytes', 64),
    push: Type.Optional(
      Type.Union([Type.Literal('json'), Type.Literal('cbor')], {
        description: 'How envelopes are pushed: one of the challenge\'s "push" offers (default json; spec/09-relay.md §5.2.2)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type WsAuthFrame = Static<typeof WsAuthFrame>;

export const WsAckFrame = Type.Object(
  { type: Type.Literal('ack'), seqs: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: MAX_ACKS_PER_REQUEST }) },
  { additionalProperties: false },
);
export type WsAckFrame = Static<typeof WsAckFrame>;

/**
 * Limits of delivery tokens, sealed sends and the strangers path. Each is a
 * named default with its reason; spec/12-sealed-sender.md §9 lists them.
 */
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const MiB = 1024 * 1024;

/**
 * How long a token may be registered for. Bounds how long one token links
 * a contact's envelopes (a pseudonymous pair) and equals the mailbox TTL,
 * so refresh traffic stays small. Longer requests are clamped.
 */
export const TOKEN_LIFETIME_MS = 30 * DAY_MS;

/** Live token hashes per recipient account: contacts × 2 during refresh, plus groups and the pool. */
export const MAX_TOKENS_PER_ACCOUNT = 8192;

/** Hashes per registration or revocation request: a pool refill or a block fits, the JSON stays small. */
export const MAX_TOKENS_PER_REQUEST = 256;

/**
 * Per token and hour: one contact flooding one account. 600 envelopes is
 * ten a minute sustained, far above a person typing; 64 MiB covers
 * attachment pointers and long texts. Each flag halves both.
 */
export const TOKEN_RATE = { windowMs: HOUR_MS, envelopes: 600, bytes: 64 * MiB } as const;

/**
 * Per recipient account and hour over all its tokens: many tokens (a large
 * group, or many contacts) cannot together bury one mailbox. The mailbox
 * quotas of spec/09 §8.3 still apply on top, per token as the sender share.
 */
export const SEALED_RECIPIENT_RATE = { windowMs: HOUR_MS, envelopes: 20_000, bytes: 1024 * MiB } as const;

/**
 * Largest per-device seal in a sealed group send (spec/12 §10). An honest one
 * is a mode-1 seal of a 71-byte GroupKeyWrap: about 142 bytes (145 with a
 * five-byte device id). The bound keeps the per-row part of a group send
 * small, so the payload is the only large thing and is stored once.
 */
export const MAX_GROUP_SEAL_BYTES = 256;

/**
 * Bytes a sealed group payload adds to the group message it encrypts: the
 * ChaCha20-Poly1305 tag (core's seal/group.ts). The payload's bounds are
 * those of an AEAD ciphertext of one envelope: at least this (an empty
 * message; shorter opens for no one, and every receiver's decoder refuses
 * the [2, 7, seal, payload] framing it would get), at most
 * `maxEnvelopeBytes` plus this (the largest message, as core's decoder
 * accepts it).
 */
export const GROUP_PAYLOAD_TAG_BYTES = 16;

/** Flags that revoke a token: one or two may be a mistake, three reporters (or one persistent one) end it. */
export const FLAGS_TO_REVOKE = 3;

/** New recipient accounts per identified sender account per day on the strangers path. */
export const STRANGER_RECIPIENTS_PER_DAY = 50;

/** Identified first-contact envelopes per recipient account per day. */
export const STRANGER_ENVELOPES_PER_DAY = 500;

/** How often expired tokens and old budget windows are deleted. */
export const TOKEN_SWEEP_INTERVAL_MS = 10 * 60_000;

/**
 * Every bound in the protocol, each with its reason. spec/01-conventions.md §6.
 */

/**
 * Most messages a receiver will skip ahead in one chain for a single incoming
 * message. Each skipped message costs three HMACs and a stored key, so this
 * caps the work and memory one forged header can cause. 2000 covers a phone
 * that was offline through a very busy conversation; beyond that a sender
 * rekeys by receiving (every reply starts a new chain).
 */
export const MAX_FORWARD_JUMP = 2000;

/**
 * Most skipped message keys kept per session across all chains; the oldest
 * are evicted first. Bounded so a session record stays small (~100 KB) and a
 * stored key for a message that never arrives does not live forever.
 */
export const MAX_SKIPPED_KEYS = 2000;

/**
 * Receiving chains kept per session. Older chains' unused keys survive only
 * as skipped keys; a message for a chain no longer kept fails.
 */
export const MAX_RECEIVER_CHAINS = 5;

/**
 * Archived (previous) sessions kept per peer device, as libsignal does (40).
 * A new session replaces the current one when either side reinstalls,
 * restores, or both start at once; a late message on an older session still
 * decrypts while its state is archived. 40 covers years of such events for a
 * device while bounding the record and the trial decryptions per message.
 */
export const MAX_ARCHIVED_SESSIONS = 40;

/**
 * Archived sessions (most recent first) on which an incoming message with an
 * unknown ratchet key is tried; each try costs a DH ratchet step. Two covers
 * simultaneous initiation (the peer answers on the session we archived when
 * its PreKeyMessage arrived) while bounding what one forged message costs.
 * Archived sessions that know the ratchet key are always tried (cheap).
 */
export const MAX_ARCHIVED_RATCHET_TRIALS = 2;

/** Largest plaintext one message may carry (media goes as attachments). */
export const MAX_PLAINTEXT_BYTES = 1 << 20;

/**
 * Largest encoded one-to-one message accepted by a decoder: the padded
 * maximum plaintext (Padme adds at most 1/32 at this size; 1/16 leaves room)
 * plus the AEAD tag, header and PreKeyMessage fields (~2.3 KB).
 */
export const MAX_MESSAGE_BYTES = MAX_PLAINTEXT_BYTES + (MAX_PLAINTEXT_BYTES >> 4) + 4096;

/** Largest encoded bundle, certificate or prekey structure accepted. */
export const MAX_BUNDLE_BYTES = 4096;

/** Largest stored record accepted (sessions with full skipped-key stores and archives). */
export const MAX_RECORD_BYTES = 64 << 20;

/** Signed prekeys a device keeps (the current one plus rotated ones in their grace period). */
export const MAX_STORED_SIGNED_PREKEYS = 100;

/** One-time X25519 prekeys a device keeps unconsumed (a relay holds at most as many). */
export const MAX_STORED_ONE_TIME_PREKEYS = 10_000;

/** ML-KEM prekeys a device keeps (one-time plus last-resort); each private key is 2400 bytes. */
export const MAX_STORED_KEM_PREKEYS = 1000;

/** Base keys remembered per signed prekey to refuse replayed initial messages without a one-time prekey. */
export const MAX_REMEMBERED_BASE_KEYS = 10_000;

/** SHA-512 iterations in safety-number derivation (slows down collision search). */
export const SAFETY_NUMBER_ITERATIONS = 5200;

/** Device ids are 1..2^31-1. */
export const MAX_DEVICE_ID = 0x7fffffff;

/** Prekey ids are 1..2^32-1 (0 is reserved as "none"). */
export const MAX_PREKEY_ID = 0xffffffff;

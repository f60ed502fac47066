/**
 * The client's sealed-sender policy constants. spec/12-sealed-sender.md §3, §8, §9.
 */

/** A granted token's life: the relay's TOKEN_LIFETIME (longer requests are clamped there). */
export const TOKEN_LIFETIME_MS = 30 * 24 * 3600 * 1000;

/**
 * A new token is granted once the newest one has less than this left (at
 * 2/3 of its life): both stay valid until the old one expires, so a sender
 * that was offline for a while still holds a live one.
 */
export const REFRESH_BEFORE_EXPIRY_MS = TOKEN_LIFETIME_MS / 3;

/**
 * An issued token's entry is kept this long after it expires: envelopes the
 * relay accepted before the expiry can still arrive (its message TTL) and
 * must still be attributed to their contact.
 */
export const ISSUED_RETENTION_MS = 30 * 24 * 3600 * 1000;

/**
 * Delivery receipts wait a random delay in this range before going out
 * (unless a message to the same peer carries them earlier): a relay that
 * sees a sealed envelope arrive and a receipt leave right after could link
 * the two (Martiny et al., NDSS 2021). Fresh per batch.
 */
export const RECEIPT_DELAY_MS = { min: 30_000, max: 300_000 } as const;

/**
 * Token hashes kept registered ahead of any grant. A grant takes one from
 * the pool instead of registering a hash right then, so the relay cannot
 * join a registration to the contact whose first sealed sends follow it.
 */
export const TOKEN_POOL = 16;

/** The pool is refilled (in one registration, at upkeep) once it holds fewer than this. */
export const TOKEN_POOL_REFILL_BELOW = 8;

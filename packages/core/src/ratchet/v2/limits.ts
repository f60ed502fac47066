/**
 * Bounds of ratchet v2, each with its reason. spec/01-conventions.md §6 and
 * spec/13-ratchet-v2.md §7 list them. The v1 bounds (forward jump, stored
 * skipped keys, receiving chains) apply unchanged.
 */
import { MAX_RECEIVER_CHAINS } from '../../limits.ts';

/**
 * Distinct header keys among a session's skipped message keys (one group per
 * peer chain). Each group is one header trial for every incoming message, so
 * this bounds the work a forged header costs; 8 covers a peer's chains across
 * a long offline period (5 receiving chains are kept besides). The oldest
 * group is evicted with its keys.
 */
export const MAX_SKIPPED_HEADER_KEYS = 8;

/**
 * Header opens per session per incoming message: every receiving chain's
 * key, every skipped group's key, and the next header key. Derived, not
 * configurable; a test counts the opens through an instrumented backend.
 */
export const MAX_HEADER_TRIALS_PER_SESSION = MAX_SKIPPED_HEADER_KEYS + MAX_RECEIVER_CHAINS + 1;

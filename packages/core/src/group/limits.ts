/**
 * Every bound of the group layer, each with its reason. spec/08-groups.md §7.
 */
import { MAX_FORWARD_JUMP, MAX_MESSAGE_BYTES } from '../limits.ts';

/** Group ids are 32 random bytes: unguessable, and collision-free without coordination. */
export const GROUP_ID_BYTES = 32;

/**
 * Most member devices a group may hold, self included. Sender keys cost O(n)
 * per membership change (one distribution per device per sender), so the
 * bound keeps a removal's cost and a group record's size (about 200 bytes
 * per member device) predictable. 5,000 covers 1,000 people with several
 * devices each.
 */
export const MAX_GROUP_MEMBER_DEVICES = 5000;

/**
 * Most iterations a receiver will step ahead in one sender chain for a single
 * message: the same bound and reason as the one-to-one chains (each skipped
 * message costs three HMACs and a stored key).
 */
export const MAX_GROUP_FORWARD_JUMP = MAX_FORWARD_JUMP;

/**
 * Most skipped message keys kept per group across all senders; the oldest
 * are evicted first. Bounds the record (about 100 bytes per key) whatever
 * the group size, while leaving room for out-of-order delivery from many
 * senders at once.
 */
export const MAX_GROUP_SKIPPED_KEYS = 5000;

/**
 * Chains kept per sender device (its newest generations). A sender starts a
 * new chain at every rotation; older chains stay for messages still in
 * flight. libsignal keeps five sender-key states per sender for the same
 * reason.
 */
export const MAX_CHAINS_PER_SENDER = 5;

/**
 * How many epochs back a message may come from: chains of the epoch just
 * before the current one stay usable (for messages sent before their sender
 * learned of the membership change); older ones are deleted when the epoch
 * advances.
 */
export const EPOCH_GRACE_EPOCHS = 1;

/**
 * How far past the position a receiver had reached when its epoch advanced
 * (or past the position in a late distribution) a previous-epoch chain is
 * still accepted. Covers a backlog of messages sent before the sender learned
 * of the change, while a sender that never rotates stops being heard after a
 * bounded number of messages.
 */
export const EPOCH_GRACE_MESSAGES = 1000;

/**
 * Default number of messages after which a sender rotates its chain on its
 * own. Bounds how many future messages a stolen chain key decrypts (the
 * post-compromise horizon) at the price of one distribution per member
 * device per rotation.
 */
export const DEFAULT_ROTATE_AFTER_MESSAGES = 1000;

/** Largest configurable rotation interval: a chain must rotate long before its counter runs out. */
export const MAX_ROTATE_AFTER_MESSAGES = 1 << 24;

/** Iterations, generations and epochs are uint32 on the wire; none may reach the top. */
export const MAX_GROUP_COUNTER = 0xfffffffe;

/**
 * Highest epoch a device may start at when it joins (`GroupSession.create`).
 * The joining epoch comes from another member (the inviter), so it is
 * peer-controlled: without this bound an inviter could hand out 0xfffffffe
 * and leave the joiner unable to apply a single removal. 2^31 - 1 leaves at
 * least 2^31 - 1 removals of headroom on every device, and an honest group
 * reaches it only after 2^31 - 1 removals, each an O(members) fan-out.
 */
export const MAX_GROUP_JOIN_EPOCH = 0x7fffffff;

/** Largest encoded group message: the same bound as a one-to-one message. */
export const MAX_GROUP_MESSAGE_BYTES = MAX_MESSAGE_BYTES;

/** Largest encoded group message header (actual size is under 90 bytes). */
export const MAX_GROUP_HEADER_BYTES = 128;

/** Largest encoded sender-key distribution (actual size is under 160 bytes). */
export const MAX_DISTRIBUTION_BYTES = 256;

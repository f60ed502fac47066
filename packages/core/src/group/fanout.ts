/**
 * Sending one distribution to many devices through their one-to-one
 * sessions. spec/08-groups.md §4.3.
 *
 * What is shared across recipients: the distribution is encoded once, and
 * the same plaintext bytes go into every session. What cannot be shared:
 * each session's ratchet step and AEAD, since every recipient holds
 * different keys (sharing a key between sessions would let one recipient
 * read another's copy). So a distribution to N devices costs one encoding
 * plus N one-to-one encryptions, about three HMACs and one AEAD each.
 */
import { fail } from '../errors.ts';
import type { SessionRecord } from '../session/record.ts';
import type { GroupMember } from './member.ts';
import type { GroupDistribution } from './membership.ts';
import { certificateNames } from './receive.ts';

export interface SealedDistribution {
  readonly recipient: GroupMember;
  /** A one-to-one message for that device (hand it to the transport as is). */
  readonly message: Uint8Array;
}

/**
 * Encrypts `distribution.bytes` for every recipient with that device's
 * `SessionRecord` (from `sessionFor`). Every record is checked before any is
 * used: a missing session is NO_SESSION and a record whose peer is another
 * device is IDENTITY_MISMATCH (sending a chain key to the wrong device would
 * hand it our messages), and in both cases no record has advanced. Persist
 * the records after this returns, before the messages leave.
 */
export function sealDistribution(
  distribution: Pick<GroupDistribution, 'bytes' | 'recipients'>,
  sessionFor: (member: GroupMember) => SessionRecord | undefined,
): SealedDistribution[] {
  const records = distribution.recipients.map((recipient) => {
    const record = sessionFor(recipient);
    const peer = record?.remoteCertificate;
    if (!record || !peer) fail('NO_SESSION', 'no one-to-one session with a recipient device', { deviceId: recipient.deviceId });
    if (!certificateNames(peer, recipient)) {
      fail('IDENTITY_MISMATCH', "the session's peer is not the recipient device", { deviceId: recipient.deviceId });
    }
    return { recipient, record };
  });
  return records.map(({ recipient, record }) => ({ recipient, message: record.encrypt(distribution.bytes) }));
}

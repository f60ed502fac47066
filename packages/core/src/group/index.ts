/**
 * Sender-key groups: the public API. spec/08-groups.md.
 */
export { type DistributionInfo, peekDistribution } from './distribution.ts';
export { type SealedDistribution, sealDistribution } from './fanout.ts';
export * as groupLimits from './limits.ts';
export { type GroupMember, memberOf, sameMember } from './member.ts';
export { GroupDistribution, type MembershipChange } from './membership.ts';
export type { GroupHeader } from './message.ts';
// Both versions: v2 group messages (formats-v2 §8.1) route like v1 ones.
export { peekAnyGroupMessage as peekGroupMessage } from './message-v2.ts';
export type { DistributionAccepted } from './receive.ts';
export {
  type GroupDecryptOptions,
  type GroupDecryptResult,
  type GroupEncryptOptions,
  type GroupEncryptResult,
  type GroupFranking,
  GroupSession,
  type GroupSessionOptions,
} from './session.ts';

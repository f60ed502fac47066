/**
 * Franking (spec/design/formats-v2.md §6, §9): the tag every v2 message
 * commits to, the relay's frank, and report verification. Public so that
 * the relay (which reaches primitives only through core) and the moderator
 * tool use the same code.
 */
export { FRANKING_KEY_BYTES, FRANKING_TAG_BYTES, type FrankingSender, checkFrankingTag, frankingTag } from './tag.ts';
export {
  ENVELOPE_ID_BYTES,
  FRANK_BYTES,
  FRANK_KEY_BYTES,
  FRANK_KEY_PERIOD_MS,
  FRANK_KEY_RETENTION_MS,
  type FrankDevice,
  type RelayFrankInput,
  checkRelayFrank,
  frankKeyExpired,
  frankKeyId,
  relayFrank,
} from './frank.ts';
export {
  type AbuseReport,
  MAX_REPORT_ITEMS,
  type ReportContext,
  type ReportItem,
  type ReportRefusalCode,
  type ReportVerdict,
  decodeReport,
  encodeReport,
  verifyReport,
} from './report.ts';
export {
  MODERATOR_TOKEN_LIFETIME_MS,
  type ModeratorToken,
  type TokenCheck,
  type TokenIssue,
  attestFrankingTag,
  checkModeratorToken,
  decodeModeratorToken,
  encodeModeratorToken,
  issueModeratorToken,
  openTokenHolder,
  tokenRef,
} from './token.ts';
export {
  type AttachmentRefusalCode,
  type AttachmentRefusalReason,
  type AttachmentVerdict,
  type BlobSource,
  MAX_REPORT_BLOB_BYTES,
  REPORT_CHUNK_COST_BYTES,
  reportAttachmentsCost,
  verifyReportAttachments,
} from './report-attachments.ts';

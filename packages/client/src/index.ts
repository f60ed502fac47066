/**
 * @parley/client: the SDK that turns core and a relay into a messenger.
 * spec/10-client.md. Start with `ParleyClient` (client.ts).
 *
 * Node apps also import `@parley/client/node` (SQLite store, relay link with
 * `ws`); the typed relay client alone is `@parley/client/relay-client`.
 */
export {
  ParleyClient,
  type ClientConfig,
  type DeadLetterInfo,
  type DeviceInfo,
  type GroupInfo,
  type RelayConnector,
  type SendResult,
} from './client.ts';
export type { FileToSend } from './files/transfer.ts';
export { ClientError, ClientErrorCode, isClientError } from './errors.ts';
export { MAX_REPORT_COMMENT_BYTES, type ReportOutcome, type ReportRequest } from './engine/reports.ts';
export {
  MAX_REPORT_CONTEXT,
  NOT_REPORTABLE_TEXT,
  type NotReportableReason,
  type ReportPreview,
  type ReportPreviewItem,
  type Reportability,
} from './reports/build.ts';
export { type RelayReportCode, ReportError, type ReportErrorCode, isReportError } from './reports/errors.ts';
export { REPORT_REASONS, REPORT_REASON_LABELS, type ReportReason, isReportReason } from './reports/reasons.ts';
export type { ClientEvents, EventName, Listener, MessageBody, MessageEvent, SenderRef } from './events.ts';
export { DEFAULT_OPTIONS, type ClientOptions } from './engine/context.ts';
export { type AttachmentInfo, type Content, type ContentBody, ContentType, decodeContent, encodeContent } from './content/content.ts';
export { type DeviceList, certificateHash, decodeSignedDeviceList, signDeviceList } from './devices/device-list.ts';
export { type DeviceVerdict, type RefusalReason, judgeDevices } from './devices/trust.ts';
export { accountId, parseAccountId } from './state/ids.ts';
export { conversationId, parseConversationId } from './state/conversation-id.ts';
export type { StoredMessage, MessageStatusName } from './state/history.ts';
export { MemoryStore, type MemoryStoreOptions } from './store/memory.ts';
export { IndexedDbStore, IndexedDbStoreError, type IndexedDbStoreErrorCode, type IndexedDbStoreOptions } from './store/indexeddb.ts';
export type { AttachmentFiles } from './store/downloads.ts';
export { type ClientStore, type StoreEntry, type Table, TABLES } from './store/types.ts';
export { connectRelay, type RelayConnectOptions } from './relay-link/adapter.ts';
export type * from './relay-link/link.ts';

/**
 * The relay client: typed HTTP methods for every relay route with request
 * signing, and a websocket receiver with acknowledgements, "drained" and
 * reconnect with backoff. spec/09-relay.md.
 *
 * Node 20 has no global WebSocket: pass `WebSocket` from the `ws` package in
 * the options. Browsers use the global one.
 */
export {
  RelayClient,
  type RelayClientOptions,
  type PreKeyUploadInput,
  type UploadProgress,
  type DownloadResult,
  mismatchesOf,
  preKeysOf,
} from './client.ts';
export { MailboxReceiver, type MailboxHandlers, type MailboxOptions, type MailboxState } from './mailbox.ts';
export { RelayError, isRelayError } from './errors.ts';
export {
  type RelaySigner,
  REQUEST_LABEL,
  WEBSOCKET_LABEL,
  accountSigner,
  authorizationHeader,
  contentDigest,
  deviceSigner,
  requestStatementBody,
  websocketStatementBody,
} from './signing.ts';
export { fromBase64Url, toBase64Url } from './encoding.ts';
export { backoffDelay } from './backoff.ts';
export type * from './types.ts';

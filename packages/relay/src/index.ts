/**
 * @parley/relay: the blind relay. spec/09-relay.md.
 */
export { buildApp, loggerOptions, relayApp, type BuildAppOptions } from './app.ts';
export { startServer, closeOnSignals, type RunningRelay } from './server.ts';
export {
  type RelayConfig,
  type RelayConfigOverrides,
  type RelayLimits,
  type RelayRateLimits,
  ConfigError,
  DEFAULT_CONFIG,
  OPTIONS,
  loadConfig,
  withDefaults,
} from './config.ts';
export { ERROR_STATUS, type RelayErrorCode } from './errors.ts';
export { REQUEST_LABEL, WEBSOCKET_LABEL, requestSignedBytes, websocketSignedBytes } from './auth/canonical.ts';
export { UNSIGNED_BODY_HASH } from './auth/authenticate.ts';
export { CloseCode } from './delivery/hub.ts';
export { SqliteStorage, type SqliteStorageOptions } from './storage/sqlite.ts';
export { PostgresStorage, type PostgresStorageOptions } from './storage/postgres.ts';
export type * from './storage/types.ts';
export type * as Wire from './schemas.ts';
export type * as DeviceListWire from './routes/device-list-schemas.ts';
export { sweepOnce } from './sweeper.ts';
export { type BlobStore, type AppendOutcome, FileBlobStore } from './attachments/blob-store.ts';
export { PostgresBlobStore, type PostgresBlobStoreOptions } from './attachments/postgres-blob-store.ts';
export { openStorage, openBlobStore } from './storage/backends.ts';
export { serve, type ServingRelay } from './cli/serve.ts';
export { backupSqlite, type BackupResult } from './cli/backup.ts';

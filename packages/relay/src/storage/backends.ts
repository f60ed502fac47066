/**
 * The storage and the blob store the configuration names: SQLite under the
 * data directory, or PostgreSQL (PARLEY_DATABASE_URL, migrated on open);
 * attachment bytes in files or in PostgreSQL (PARLEY_BLOB_STORE).
 * spec/09-relay.md §7.
 */
import { join } from 'node:path';
import { type BlobStore, FileBlobStore } from '../attachments/blob-store.ts';
import type { RelayConfig } from '../config.ts';
import { SqliteStorage } from './sqlite.ts';
import type { MailboxesCommitted, RelayStorage } from './types.ts';
import type { BatchObserver } from './write-batcher.ts';

/** Reports group commits (SQLite) to the metrics. */
export type ObserveBatch = BatchObserver;

export function usesPostgres(config: RelayConfig): boolean {
  return config.databaseUrl !== '';
}

/** `onMailboxesCommitted`: the storage hands each commit's rows to the relay's delivery (spec/09-relay.md §5.2.1). */
export async function openStorage(
  config: RelayConfig,
  observeBatch?: ObserveBatch,
  onMailboxesCommitted?: MailboxesCommitted,
): Promise<RelayStorage> {
  if (usesPostgres(config)) {
    // Loaded only when configured: a SQLite relay never loads the PostgreSQL driver.
    const { PostgresStorage } = await import('./postgres.ts');
    return PostgresStorage.open({
      connectionString: config.databaseUrl,
      ...(config.databaseSchema ? { schema: config.databaseSchema } : {}),
      ...(onMailboxesCommitted ? { onMailboxesCommitted } : {}),
    });
  }
  return new SqliteStorage({
    path: join(config.dataDir, 'relay.sqlite'),
    ...(observeBatch ? { observeBatch } : {}),
    ...(onMailboxesCommitted ? { onMailboxesCommitted } : {}),
  });
}

/** `auto` keeps bytes next to the rows: in PostgreSQL when the database is, so relay processes share them. */
export function blobStoreKind(config: RelayConfig): 'file' | 'postgres' {
  if (config.blobStore === 'auto') return usesPostgres(config) ? 'postgres' : 'file';
  return config.blobStore;
}

export async function openBlobStore(config: RelayConfig): Promise<BlobStore> {
  if (blobStoreKind(config) === 'postgres') {
    const { PostgresBlobStore } = await import('../attachments/postgres-blob-store.ts');
    return PostgresBlobStore.open({ connectionString: config.databaseUrl, schema: config.databaseSchema || undefined });
  }
  return FileBlobStore.open(join(config.dataDir, 'attachments'));
}

/**
 * `parley-relay backup <folder>`: an online backup of a SQLite relay,
 * safe while it runs, with nothing to install beyond the relay itself (no
 * sqlite3 program).
 *
 *  1. `<folder>` is created if missing.
 *  2. The database is copied with `VACUUM INTO` from a read-only
 *     connection: one read transaction, so the copy is a consistent
 *     snapshot including the latest commits in the WAL, written to
 *     `relay.sqlite.partial` and renamed, so a half-written backup never
 *     looks finished.
 *  3. Then attachments/ is copied. Files are only appended to and deleted,
 *     and the rows were copied first: every attachment the backup's rows
 *     call finished was finished before the snapshot, so its file is
 *     complete in the copy.
 *
 * PostgreSQL deployments are backed up with the database's own tools
 * (pg_dump); see the README.
 */
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { blobStoreKind, usesPostgres } from '../storage/backends.ts';
import type { RelayConfig } from '../config.ts';
import { StartupError } from './startup-errors.ts';

export interface BackupResult {
  readonly folder: string;
  readonly database: string;
  readonly attachments: string | undefined;
}

export function backupSqlite(config: RelayConfig, folder: string): BackupResult {
  if (usesPostgres(config)) {
    throw new StartupError('backup copies a SQLite relay; back up PostgreSQL with pg_dump (see the README)');
  }
  const source = join(config.dataDir, 'relay.sqlite');
  if (!existsSync(source)) throw new StartupError(`no relay database at ${source}; set PARLEY_DATA_DIR (--data-dir)`);
  const target = resolve(folder);
  try {
    mkdirSync(target, { recursive: true });
  } catch (error) {
    throw new StartupError(`cannot create ${target} (${(error as { code?: string }).code ?? 'error'})`);
  }
  const database = join(target, 'relay.sqlite');
  const partial = `${database}.partial`;
  rmSync(partial, { force: true });
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    db.prepare('VACUUM INTO ?').run(partial);
  } finally {
    db.close();
  }
  renameSync(partial, database);
  let attachments: string | undefined;
  const blobs = join(config.dataDir, 'attachments');
  if (blobStoreKind(config) === 'file' && existsSync(blobs)) {
    attachments = join(target, 'attachments');
    cpSync(blobs, attachments, { recursive: true });
  }
  return { folder: target, database, attachments };
}

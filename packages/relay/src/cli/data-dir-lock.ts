/**
 * One relay process per SQLite data directory. Two processes on one
 * relay.sqlite would each keep their own delivery hub and replay cache: a
 * message sent through one would wait for the other's next poll, and a
 * replayed signature would pass on the other. So the second is refused.
 *
 * The lock is an exclusive SQLite transaction held on `<dataDir>/relay.lock`
 * for the life of the process: an operating-system file lock, released by
 * the kernel however the process ends (kill -9 included), so a crash never
 * leaves a stale lock behind and a restart needs no cleanup.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StartupError } from './startup-errors.ts';

export const LOCK_FILE = 'relay.lock';

export interface DataDirLock {
  release(): void;
}

export function lockDataDir(dataDir: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  // timeout 0: a held lock answers SQLITE_BUSY at once instead of waiting.
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY' || (error as { code?: string }).code === 'SQLITE_LOCKED') {
      throw new StartupError(
        `data directory ${dataDir} is in use by another relay process (${path} is locked); stop it, or give this one its own PARLEY_DATA_DIR`,
      );
    }
    throw error;
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

/**
 * The fsync that makes a SQLite WAL commit durable, off the event loop.
 * spec/09-relay.md §7.1; used by write-batcher.ts.
 *
 * The database runs in WAL mode with synchronous=NORMAL: a commit appends
 * its frames to the WAL with write() and returns; SQLite itself syncs the
 * WAL only before a checkpoint. Syncing the WAL file after the commit, before
 * anyone is answered, gives what synchronous=FULL gives (the commit frame and
 * every frame before it are on disk, and recovery replays them), but on
 * libuv's thread pool: the relay goes on parsing and committing the next
 * batch meanwhile, and one fsync covers every batch committed before it
 * started.
 *
 * One descriptor is held for the relay's lifetime. SQLite deletes the WAL
 * only when the last connection to the database closes, and otherwise
 * truncates and reuses the same file, so while the storage is open the
 * descriptor names the live WAL. The folder is synced once at start, so the
 * WAL's directory entry is durable too.
 *
 * It also holds a descriptor of the database file, for the checkpoint
 * worker's flushes between its passes (wal-checkpointer.ts). Closing any
 * descriptor of a file drops every POSIX lock this process holds on it,
 * SQLite's included (its connections keep a shared lock on the database
 * while in WAL mode): so this one is opened once and closed after the relay's
 * connection (`close()`, which sqlite.ts calls last), never while SQLite's
 * locks matter.
 */
import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DurableSync } from './write-batcher.ts';

export class WalSync implements DurableSync {
  readonly #fd: number;
  /** The database file, open for writing (an fsync through it covers the file's pages, whoever wrote them). */
  readonly databaseFd: number;

  /** `databasePath`'s WAL must exist: SQLite creates it at the first read in WAL mode (migrations read the schema version). */
  constructor(databasePath: string) {
    // Read-write: POSIX does not promise that an fsync through a read-only descriptor flushes the file.
    this.#fd = openSync(`${databasePath}-wal`, 'r+');
    this.databaseFd = openSync(databasePath, 'r+');
    const dir = openSync(dirname(databasePath), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => fsync(this.#fd, (error) => (error ? reject(error) : resolve())));
  }

  syncNow(): void {
    fsyncSync(this.#fd);
  }

  /** After the relay's connection closed (see above: closing the database's descriptor drops SQLite's locks). */
  close(): void {
    closeSync(this.#fd);
    closeSync(this.databaseFd);
  }
}

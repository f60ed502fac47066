/**
 * Attachment bytes in PostgreSQL: the BlobStore for several relay processes
 * on one database with no shared disk (PARLEY_BLOB_STORE=postgres, the
 * default with PARLEY_DATABASE_URL). spec/09-relay.md §4.5.
 *
 * A blob is one row in `parley_blobs` and its bytes are rows of at most
 * CHUNK_BYTES in `parley_blob_chunks`, keyed by their start offset. Every
 * chunk row commits on its own, so what `append` reports written is on the
 * server's disk (synchronous_commit=on) exactly as the file store's fsync
 * makes it; bytes past a recorded offset are cut when the next append starts
 * there. Reads fetch one chunk row at a time, so serving a blob holds at
 * most one chunk in memory whatever its size.
 *
 * The tables belong to this module (not to the storage schema): they are
 * created if missing, under an advisory lock so that relays starting
 * together do not race.
 */
import { Readable } from 'node:stream';
import pg from 'pg';
import { type AppendOutcome, type BlobStore, checkBlobId } from './blob-store.ts';

/**
 * Largest chunk row. 1 MiB keeps a row well inside PostgreSQL's TOAST limits
 * (1 GB) and bounds the memory of one upload or download to about this much,
 * while a 100 MiB attachment is still only 100 rows.
 */
export const CHUNK_BYTES = 1024 * 1024;
/** Connections this store holds: uploads and downloads in flight at once. */
const POOL_SIZE = 4;
/** Both schema creations (storage and blobs) serialise on their own advisory lock key. */
const MIGRATION_LOCK = 'parley_blob_store_migration';

export interface PostgresBlobStoreOptions {
  /** postgres://user:password@host:port/database */
  readonly connectionString: string;
  /** The deployment's schema (PARLEY_DATABASE_SCHEMA); default: the role's search_path. */
  readonly schema?: string | undefined;
  readonly poolSize?: number;
}

/** Runs `work` on one pooled connection inside BEGIN/COMMIT; any failure rolls back and is rethrown. */
async function inTransaction(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await work(client);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

export class PostgresBlobStore implements BlobStore {
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Connects and creates the tables if they are missing. */
  static async open(options: PostgresBlobStoreOptions): Promise<PostgresBlobStore> {
    const { schema } = options;
    if (schema !== undefined && schema !== '' && !/^[a-z_][a-z0-9_]{0,40}$/.test(schema)) {
      throw new RangeError('PostgreSQL schema name must be 1-41 lowercase letters, digits or _ (not starting with a digit)');
    }
    const settings = ['-c synchronous_commit=on'];
    if (schema) settings.push(`-c search_path=${schema}`);
    const pool = new pg.Pool({
      connectionString: options.connectionString,
      options: settings.join(' '),
      max: options.poolSize ?? POOL_SIZE,
    });
    // An idle pooled connection that the server drops must not crash the process.
    pool.on('error', () => {});
    try {
      await inTransaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [MIGRATION_LOCK]);
        if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await client.query(`CREATE TABLE IF NOT EXISTS parley_blobs (
          id TEXT PRIMARY KEY,
          created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )`);
        await client.query(`CREATE TABLE IF NOT EXISTS parley_blob_chunks (
          id TEXT NOT NULL REFERENCES parley_blobs (id) ON DELETE CASCADE,
          start BIGINT NOT NULL,
          data BYTEA NOT NULL,
          PRIMARY KEY (id, start)
        )`);
      });
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresBlobStore(pool);
  }

  async create(id: string): Promise<void> {
    checkBlobId(id);
    await this.#pool.query('INSERT INTO parley_blobs (id) VALUES ($1)', [id]);
  }

  async append(id: string, offset: number, source: AsyncIterable<Uint8Array>, maxBytes: number): Promise<AppendOutcome> {
    checkBlobId(id);
    await this.#truncate(id, offset);
    let written = 0;
    let overflow = false;
    let error: unknown;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      await this.#pool.query('INSERT INTO parley_blob_chunks (id, start, data) VALUES ($1, $2, $3)', [id, offset + written, data]);
      written += data.length;
    };
    // Only the source's failures are the client's (a dropped connection); the database's propagate.
    const iterator = source[Symbol.asyncIterator]();
    for (;;) {
      let step: IteratorResult<Uint8Array>;
      try {
        step = await iterator.next();
      } catch (e) {
        error = e;
        break;
      }
      if (step.done) break;
      const chunk = step.value;
      const room = maxBytes - written - pendingBytes;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      // Fill rows to exactly CHUNK_BYTES so that a blob is ceil(size / CHUNK_BYTES) rows.
      let at = 0;
      while (at < part.length) {
        const take = Math.min(part.length - at, CHUNK_BYTES - pendingBytes);
        pending.push(part.subarray(at, at + take));
        pendingBytes += take;
        at += take;
        if (pendingBytes === CHUNK_BYTES) await flush();
      }
      if (chunk.length > room) {
        overflow = true;
        await iterator.return?.();
        break;
      }
    }
    // Bytes that arrived before a failing source are kept, as the file store keeps them.
    await flush();
    return error === undefined ? { written, overflow } : { written, overflow, error };
  }

  /** Drops every byte at or past `offset` (one transaction: never half cut). */
  async #truncate(id: string, offset: number): Promise<void> {
    await inTransaction(this.#pool, async (client) => {
      const known = await client.query('SELECT 1 FROM parley_blobs WHERE id = $1 FOR UPDATE', [id]);
      if (known.rowCount === 0) throw new Error('no such blob');
      await client.query('DELETE FROM parley_blob_chunks WHERE id = $1 AND start >= $2', [id, offset]);
      await client.query(
        'UPDATE parley_blob_chunks SET data = substring(data FROM 1 FOR ($2 - start)::int) WHERE id = $1 AND start < $2 AND start + length(data) > $2',
        [id, offset],
      );
    });
  }

  read(id: string, start: number, end: number): Readable {
    checkBlobId(id);
    const pool = this.#pool;
    async function* chunks(): AsyncGenerator<Buffer> {
      let position = start;
      while (position <= end) {
        const { rows } = await pool.query<{ start: string; data: Buffer }>(
          'SELECT start, data FROM parley_blob_chunks WHERE id = $1 AND start <= $2 ORDER BY start DESC LIMIT 1',
          [id, position],
        );
        const row = rows[0];
        const rowStart = row ? Number(row.start) : 0;
        if (!row || rowStart + row.data.length <= position) throw new Error('attachment bytes missing from the blob store');
        const from = position - rowStart;
        const to = Math.min(row.data.length, end - rowStart + 1);
        yield row.data.subarray(from, to);
        position = rowStart + to;
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async size(id: string): Promise<number | undefined> {
    checkBlobId(id);
    const { rows } = await this.#pool.query<{ known: boolean; bytes: string }>(
      `SELECT EXISTS (SELECT 1 FROM parley_blobs WHERE id = $1) AS known,
              COALESCE((SELECT sum(length(data)) FROM parley_blob_chunks WHERE id = $1), 0)::text AS bytes`,
      [id],
    );
    const row = rows[0];
    return row?.known ? Number(row.bytes) : undefined;
  }

  async remove(id: string): Promise<void> {
    checkBlobId(id);
    await this.#pool.query('DELETE FROM parley_blobs WHERE id = $1', [id]);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * The storage backends a relay test runs on: SQLite in memory always, and
 * PostgreSQL when PARLEY_TEST_POSTGRES_URL is set (CI sets it), each test
 * database a fresh schema that is dropped after. Written once here so that
 * every backend-parametrised test opens and cleans up the same way.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, it } from 'vitest';
import { PostgresStorage } from '../../src/storage/postgres.ts';
import { SqliteStorage } from '../../src/storage/sqlite.ts';
import type { RelayStorage } from '../../src/storage/types.ts';

const PG_URL = process.env.PARLEY_TEST_POSTGRES_URL;

/**
 * The PostgreSQL server for a test file's PostgreSQL tests
 * (PARLEY_TEST_POSTGRES_URL, printed by .ci/install-postgres.sh), or
 * undefined: those tests then skip, except under CI=true, where this
 * registers a failing test named after `what` (a missing server must not
 * pass as a skip there).
 */
export function testPostgresUrl(what: string): string | undefined {
  if (!PG_URL && process.env.CI === 'true') {
    it(`PostgreSQL server for ${what}`, () => {
      throw new Error('CI=true but PARLEY_TEST_POSTGRES_URL is not set: run .ci/install-postgres.sh and export the URL it prints');
    });
  }
  return PG_URL;
}

export interface TestDatabase {
  /**
   * A storage on this database. On PostgreSQL every call is another
   * connection pool on the same schema, as a second relay process would
   * open; on SQLite each call is a new in-memory database.
   */
  open(): Promise<RelayStorage>;
  /** Deletes what the storages left (the relay closes the storages themselves). */
  drop(): Promise<void>;
}

export interface StorageBackend {
  readonly name: 'SQLite' | 'PostgreSQL';
  /** A fresh, empty database. */
  database(): TestDatabase;
}

/**
 * SQLite, and PostgreSQL when configured. `schemaPrefix` names the test's
 * schemas (so a leftover says which test left it); `poolSize` is each
 * PostgreSQL storage's pool (the storage's default otherwise). Call at the
 * top of a test file: it registers the closing of its admin connection.
 */
export function storageBackends(schemaPrefix: string, options: { poolSize?: number } = {}): StorageBackend[] {
  const sqlite: StorageBackend = {
    name: 'SQLite',
    database: () => ({ open: async () => new SqliteStorage({ path: ':memory:' }), drop: async () => {} }),
  };
  const url = PG_URL;
  if (!url) return [sqlite];
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  afterAll(() => admin.end());
  const postgres: StorageBackend = {
    name: 'PostgreSQL',
    database: () => {
      const schema = `${schemaPrefix}_${randomBytes(6).toString('hex')}`;
      return {
        open: () => PostgresStorage.open({ connectionString: url, schema, ...(options.poolSize ? { poolSize: options.poolSize } : {}) }),
        drop: async () => void (await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)),
      };
    },
  };
  return [sqlite, postgres];
}

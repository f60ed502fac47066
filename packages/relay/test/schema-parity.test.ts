// The two storage backends write their schemas separately (sqlite-schema.ts,
// postgres-schema.ts, and the token tables beside each token store): each
// migration is the SQL that runs, in its own dialect (WITHOUT ROWID and
// triggers in SQLite, BIGINT and PL/pgSQL in PostgreSQL), and an applied
// migration never changes. What must not drift is the result: the same
// tables with the same columns, the same NOT NULLs and the same kind of
// value. This test builds both and compares them, so a column added to one
// backend only fails here rather than as a contract test that happens to
// touch it. spec/09-relay.md §7.
//
// The PostgreSQL half needs PARLEY_TEST_POSTGRES_URL (as storage-postgres.test.ts).
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { POSTGRES_SCHEMA_VERSION, migratePostgres } from '../src/storage/postgres-schema.ts';
import { SCHEMA_VERSION, migrate } from '../src/storage/sqlite-schema.ts';
import { POSTGRES_TOKEN_TABLES } from '../src/storage/tokens-postgres.ts';
import { SQLITE_TOKEN_TABLES } from '../src/storage/tokens-sqlite.ts';

const URL = process.env.PARLEY_TEST_POSTGRES_URL;

/** A column as both backends can state it: its name, NOT NULL, and a kind of value. */
type Shape = Record<string, string[]>;

/** The kind of value a declared type holds, across the two dialects' spellings. */
function kind(declared: string): string {
  const t = declared.toLowerCase();
  if (t === 'blob' || t === 'bytea') return 'bytes';
  // SQLite has no boolean type: a flag is an INTEGER 0 or 1 there, a BOOLEAN in PostgreSQL.
  if (t === 'integer' || t === 'bigint' || t === 'smallint' || t === 'boolean') return 'int';
  if (t === 'text') return 'text';
  if (t === 'real' || t === 'double precision') return 'real';
  return `other:${t}`;
}

/**
 * The mailbox counters: PostgreSQL keeps them in tables, maintained by triggers, because several
 * relay processes share them there; SQLite's single process keeps them in memory and dropped
 * these in its migration 7, which has no PostgreSQL twin (sqlite-counters.ts, spec/09-relay.md §8.3).
 */
const POSTGRES_ONLY_TABLES = ['mailbox_shares', 'mailbox_counters'];
const POSTGRES_ONLY_COLUMNS: Shape = {};
// 7: the counters in memory; 8: an index only (a covering index for the device-list check);
// 9: the same tables rebuilt (key order, no AUTOINCREMENT) and the seq reservation (sqlite-seqs.ts).
const SQLITE_ONLY_MIGRATIONS = 3;
// 7: the counters out of the device row into mailbox_counters (postgres-schema.ts).
const POSTGRES_ONLY_MIGRATIONS = 1;
/** Seqs from the SQLite relay's memory, reserved on disk (sqlite-seqs.ts); PostgreSQL has its sequence. */
const SQLITE_ONLY_TABLES = ['message_seq'];

const column = (name: string, notNull: boolean, declared: string) => `${name} ${kind(declared)}${notNull ? ' not null' : ''}`;

function sqliteShape(): Shape {
  const db = new Database(':memory:');
  try {
    migrate(db);
    db.exec(SQLITE_TOKEN_TABLES);
    const tables = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .all()
      .map((r) => r.name);
    const shape: Shape = {};
    for (const table of tables) {
      const rows = db.prepare<[], { name: string; type: string; notnull: number; pk: number }>(`PRAGMA table_info(${table})`).all();
      // A PRIMARY KEY column is NOT NULL in PostgreSQL always, in SQLite by its declaration only (an
      // INTEGER PRIMARY KEY is the rowid and never NULL): say so on both sides.
      shape[table] = rows.map((r) => column(r.name, r.notnull === 1 || r.pk > 0, r.type)).sort();
    }
    return shape;
  } finally {
    db.close();
  }
}

async function postgresShape(url: string): Promise<Shape> {
  const schema = `parley_parity_${randomBytes(6).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: url, max: 1, options: `-c search_path=${schema}` });
  const client = await pool.connect();
  try {
    await migratePostgres(client, schema);
    await client.query(POSTGRES_TOKEN_TABLES);
    const { rows } = await client.query<{ table_name: string; column_name: string; is_nullable: string; data_type: string }>(
      'SELECT table_name, column_name, is_nullable, data_type FROM information_schema.columns WHERE table_schema = $1',
      [schema],
    );
    const shape: Shape = {};
    for (const r of rows) {
      // The migration bookkeeping table has no SQLite twin: SQLite keeps the version in PRAGMA user_version.
      if (r.table_name === 'parley_schema') continue;
      (shape[r.table_name] ??= []).push(column(r.column_name, r.is_nullable === 'NO', r.data_type));
    }
    for (const t of Object.keys(shape)) shape[t]?.sort();
    return shape;
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    client.release();
    await pool.end();
  }
}

describe('storage schemas', () => {
  it('the SQLite schema reads back (tables, columns, NOT NULL, kind of value)', () => {
    const shape = sqliteShape();
    // The check can see a column: the mailbox table is there, with its envelope bytes.
    expect(shape.messages).toContain('envelope bytes not null');
    expect(Object.values(shape).every((columns) => columns.every((c) => !c.includes('other:')))).toBe(true);
  });

  it.skipIf(!URL)('PostgreSQL builds the same tables as SQLite, column for column', async () => {
    expect(POSTGRES_SCHEMA_VERSION - POSTGRES_ONLY_MIGRATIONS).toBe(SCHEMA_VERSION - SQLITE_ONLY_MIGRATIONS);
    const postgres = await postgresShape(URL as string);
    // The exceptions are there (a rename would not slip through as one), then left out.
    for (const table of POSTGRES_ONLY_TABLES) {
      expect(postgres[table]).toBeDefined();
      delete postgres[table];
    }
    for (const [table, columns] of Object.entries(POSTGRES_ONLY_COLUMNS)) {
      expect(postgres[table]).toEqual(expect.arrayContaining(columns));
      postgres[table] = (postgres[table] ?? []).filter((c) => !columns.includes(c));
    }
    const sqlite = sqliteShape();
    for (const table of SQLITE_ONLY_TABLES) {
      expect(sqlite[table]).toBeDefined();
      delete sqlite[table];
    }
    expect(postgres).toEqual(sqlite);
  });
});

// The BlobStore contract on both implementations: files under the data
// directory, and PostgreSQL (PARLEY_TEST_POSTGRES_URL, as in
// storage-postgres.test.ts: skipped without it, except under CI=true).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe } from 'vitest';
import { FileBlobStore } from '../src/attachments/blob-store.ts';
import { PostgresBlobStore } from '../src/attachments/postgres-blob-store.ts';
import { describeBlobStoreContract } from './blob-store-contract.ts';
import { testPostgresUrl } from './support/backends.ts';

const URL = testPostgresUrl('the blob store tests');

describeBlobStoreContract('files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-blobs-'));
  const store = await FileBlobStore.open(join(dir, 'attachments'));
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe.skipIf(!URL)('PostgreSQL', () => {
  const admin = URL ? new pg.Pool({ connectionString: URL, max: 1 }) : undefined;
  afterAll(() => admin?.end());
  describeBlobStoreContract('PostgreSQL', async () => {
    const schema = `parley_blob_t_${randomBytes(5).toString('hex')}`;
    const store = await PostgresBlobStore.open({ connectionString: URL as string, schema });
    return {
      store,
      close: async () => {
        await store.close();
        await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      },
    };
  });
});

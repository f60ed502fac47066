/**
 * Writes spec/openapi.json from the route schemas (the same TypeBox
 * schemas that validate requests). Run: node --import tsx packages/relay/scripts/openapi.ts
 * A test (test/openapi.test.ts) fails when the checked-in file is stale.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';

export const OPENAPI_PATH = fileURLToPath(new URL('../../../spec/openapi.json', import.meta.url));

/** The OpenAPI document of a relay with default configuration, as formatted JSON. */
export async function generateOpenApi(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-openapi-'));
  const app = await buildApp({ config: { dataDir: dir }, storage: new SqliteStorage({ path: ':memory:' }), logger: false });
  try {
    await app.ready();
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(OPENAPI_PATH, await generateOpenApi());
  console.log(`wrote ${OPENAPI_PATH}`);
}

/**
 * A real relay (`buildApp`, SQLite in a temporary folder) listening on
 * 127.0.0.1 for one test file: started before each test (or once for the
 * file), closed and its folder deleted after. The client tests that talk to
 * the relay over HTTP and websockets share it, so the set-up and clean-up
 * are written once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '@parley/relay';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

export interface LoopbackRelay {
  /** `http://127.0.0.1:PORT` of the running relay. */
  readonly url: string;
  /** The relay's data folder (its SQLite files), for tests that scan it. */
  readonly dataDir: string;
}

/**
 * Registers the hooks and returns a handle whose fields are valid inside
 * tests. `scope` 'all' shares one relay across the file's tests (for tests
 * that do not depend on an empty relay).
 */
export function loopbackRelay(prefix: string, scope: 'each' | 'all' = 'each'): LoopbackRelay {
  let app: FastifyInstance | null = null;
  let dataDir = '';
  let url = '';
  const start = async () => {
    dataDir = mkdtempSync(join(tmpdir(), `parley-${prefix}-`));
    app = await buildApp({ config: { dataDir, logLevel: 'silent' }, logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  };
  const stop = async () => {
    await app?.close();
    app = null;
    rmSync(dataDir, { recursive: true, force: true });
  };
  if (scope === 'each') {
    beforeEach(start);
    afterEach(stop);
  } else {
    beforeAll(start);
    afterAll(stop);
  }
  return {
    get url() {
      return url;
    },
    get dataDir() {
      return dataDir;
    },
  };
}

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
import { Writable } from 'node:stream';
import { type RelayConfigOverrides, buildApp, loggerOptions, withDefaults } from '@parley/relay';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

export interface LoopbackRelayOptions {
  /** 'each' (the default): a fresh relay per test; 'all': one for the file's tests (that do not depend on an empty relay). */
  readonly scope?: 'each' | 'all';
  /** Relay settings over the defaults; the data folder is always the relay's own temporary one. */
  readonly config?: Omit<RelayConfigOverrides, 'dataDir'>;
  /** The relay's clock (default: the system's). */
  readonly now?: () => number;
  /** Keeps every log line, at debug level, in `logs` (for tests that search the logs); otherwise the relay logs nothing. */
  readonly debugLogs?: boolean;
}

export interface LoopbackRelay {
  /** `http://127.0.0.1:PORT` of the running relay. */
  readonly url: string;
  /** The relay's data folder (its SQLite files), for tests that scan it. */
  readonly dataDir: string;
  /** The relay's SQLite database file. */
  readonly dbPath: string;
  /** The running relay application, for tests that reach into its context. */
  readonly app: FastifyInstance;
  /** The log lines written so far, with `debugLogs` (empty otherwise). */
  readonly logs: readonly string[];
}

/**
 * Registers the hooks and returns a handle whose fields are valid inside
 * tests. Call it before the file's own `afterAll` that closes clients: after
 * hooks run in reverse order, so the clients close before the relay does.
 */
export function loopbackRelay(prefix: string, options: LoopbackRelayOptions = {}): LoopbackRelay {
  let app: FastifyInstance | null = null;
  let dataDir = '';
  let url = '';
  const logs: string[] = [];
  const start = async () => {
    dataDir = mkdtempSync(join(tmpdir(), `parley-${prefix}-`));
    const config = withDefaults({ ...options.config, dataDir, logLevel: options.debugLogs ? 'debug' : 'silent' });
    const stream = new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    });
    app = await buildApp({
      config,
      ...(options.now ? { now: options.now } : {}),
      logger: options.debugLogs ? ({ ...(loggerOptions(config) as object), level: 'debug', stream } as never) : false,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  };
  const stop = async () => {
    await app?.close();
    app = null;
    rmSync(dataDir, { recursive: true, force: true });
  };
  if ((options.scope ?? 'each') === 'each') {
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
    get dbPath() {
      return join(dataDir, 'relay.sqlite');
    },
    get app() {
      if (!app) throw new Error('the loopback relay is not running (its fields are valid inside tests)');
      return app;
    },
    logs,
  };
}

/**
 * `parley-relay` (the default command): prepares the data directory, takes
 * its lock (SQLite), builds the app on the configured storage and blob
 * store, listens, and shuts down gracefully on SIGTERM or SIGINT:
 *
 *  1. readiness (/readyz) answers 503 at once and the listener closes, so
 *     new connections are refused;
 *  2. websockets close with 1001 (going away): clients reconnect elsewhere;
 *  3. requests in flight finish, pending writes commit, storage closes;
 *  4. the process logs "relay closed" and exits 0, or exits 1 after
 *     shutdownTimeoutSeconds whatever is still running. A second signal
 *     exits at once; nothing acknowledged is lost either way (commits are
 *     durable before they are answered).
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.ts';
import { blobStoreKind, usesPostgres } from '../storage/backends.ts';
import type { RelayConfig } from '../config.ts';
import { type DataDirLock, lockDataDir } from './data-dir-lock.ts';
import { StartupError } from './startup-errors.ts';

export interface ServingRelay {
  readonly app: FastifyInstance;
  readonly url: string;
  /** Graceful shutdown as on SIGTERM; resolves once everything is closed and the lock released. */
  close(): Promise<void>;
}

/** Creates the data directory if needed and proves it writable, or explains why not. */
export function prepareDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true });
    accessSync(dataDir, constants.W_OK);
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'error';
    throw new StartupError(
      `data directory ${dataDir} cannot be created or written (${code}); set PARLEY_DATA_DIR (--data-dir) to a writable directory`,
    );
  }
}

export async function serve(config: RelayConfig): Promise<ServingRelay> {
  const needsDataDir = !usesPostgres(config) || blobStoreKind(config) === 'file';
  if (needsDataDir) prepareDataDir(config.dataDir);
  // Shared PostgreSQL is meant for many processes; a SQLite directory is one process's.
  const lock: DataDirLock | undefined = usesPostgres(config) ? undefined : lockDataDir(config.dataDir);
  let app: FastifyInstance;
  try {
    app = await buildApp({ config });
  } catch (error) {
    lock?.release();
    throw error;
  }
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close().catch(() => {});
    lock?.release();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  app.log.info(
    {
      url,
      storage: usesPostgres(config) ? 'postgres' : 'sqlite',
      blobStore: blobStoreKind(config),
      ...(needsDataDir ? { dataDir: config.dataDir } : {}),
      corsOrigins: config.corsOrigins,
    },
    'relay listening',
  );
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      // Readiness fails from this instant, before the listener finishes closing (preClose sets it again).
      app.relay.closing = true;
      try {
        await app.close();
      } finally {
        lock?.release();
      }
    })());
  return { app, url, close };
}

/** SIGTERM/SIGINT: graceful close bounded by shutdownTimeoutSeconds; a second signal exits at once. */
export function exitOnSignals(relay: ServingRelay, timeoutSeconds: number): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      relay.app.log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    signalled = true;
    relay.app.log.info({ signal, timeoutSeconds }, 'shutting down: readiness 503, no new connections, finishing requests');
    const timer = setTimeout(() => {
      relay.app.log.error({ timeoutSeconds }, 'shutdown timed out: exiting with work still open');
      process.exit(1);
    }, timeoutSeconds * 1000);
    timer.unref();
    relay.close().then(
      () => {
        relay.app.log.info({ signal }, 'relay closed');
        process.exit(0);
      },
      (error) => {
        relay.app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

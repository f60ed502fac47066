/**
 * Runs the relay: builds the app, listens, and closes gracefully on SIGINT
 * or SIGTERM (stop accepting, close websockets with 1001, finish pending
 * writes, close the database).
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import type { RelayConfig } from './config.ts';

export interface RunningRelay {
  readonly app: FastifyInstance;
  /** e.g. http://127.0.0.1:8787 */
  readonly url: string;
  close(): Promise<void>;
}

export async function startServer(config: RelayConfig): Promise<RunningRelay> {
  const app = await buildApp({ config });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  app.log.info({ url, dataDir: config.dataDir }, 'relay listening');
  return { app, url, close: () => app.close() };
}

/** Closes the relay on the first SIGINT/SIGTERM; a second signal exits at once. */
export function closeOnSignals(relay: RunningRelay): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1);
    closing = true;
    relay.app.log.info({ signal }, 'shutting down');
    relay.close().then(
      () => process.exit(0),
      (error) => {
        relay.app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

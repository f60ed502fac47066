/**
 * `npm start`: the relay on 127.0.0.1:8787 with SQLite under ./data, unless
 * HOST, PORT, PARLEY_DATA_DIR (and the other PARLEY_* variables or --flags,
 * see README.md) say otherwise.
 */
import { ConfigError, loadConfig } from './config.ts';
import { closeOnSignals, startServer } from './server.ts';

try {
  const relay = await startServer(loadConfig());
  closeOnSignals(relay);
} catch (error) {
  if (error instanceof ConfigError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    console.error(`parley relay: ${(error as Error).message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
}

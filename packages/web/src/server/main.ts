/**
 * `npm run web` [-- --port N --data DIR]: serves the web chat and a relay on
 * 127.0.0.1 (default port 8790, data under ./data/web).
 */
import { parseArgs } from 'node:util';
import { startWeb } from './serve.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8790' },
    data: { type: 'string', default: 'data/web' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('parley web: --port expected 0..65535');
  process.exit(2);
}
const web = await startWeb({ dataDir: values.data as string, port, host: values.host as string });
console.log(`Parley web chat: open ${web.url} (relay on the same origin; data in ${values.data})`);
const stop = () => {
  void web.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

/**
 * Node conveniences, published as `@parley/client/node`: the relay link with
 * the `ws` package's WebSocket (Node 20 has none built in), and the durable
 * SQLite store. Kept out of the main entry so browser bundles never see
 * `ws` or a native module.
 */
import WebSocket from 'ws';
import { type RelayConnectOptions, connectRelay } from './relay-link/adapter.ts';
import type { WebSocketConstructor } from './relay-client/index.ts';

export { SqliteStore, type SqliteStoreOptions } from './store/sqlite.ts';
export { DownloadFolder } from './store/download-folder.ts';
export { type FileOptions, fileFromPath, fileFromStream, mediaTypeOf, webStreamFrom } from './files/node-file.ts';

/** `connectRelay` for Node: the same, with `ws` as the WebSocket. */
export function connectRelayNode(baseUrl: string, options: Omit<RelayConnectOptions, 'WebSocket'> = {}) {
  return connectRelay(baseUrl, { ...options, WebSocket: WebSocket as unknown as WebSocketConstructor });
}

/**
 * The CLI's home directory: one device per directory (so two terminals with
 * two homes are two people, or two devices of one person).
 *
 *   <home>/parley.sqlite   the SDK store (identity, sessions, history, outbox)
 *   <home>/config.json     { "relay": "http://127.0.0.1:8787" }
 *   <home>/downloads/      received attachments
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ParleyClient } from '../client.ts';
import { connectRelayNode } from '../node.ts';
import { DownloadFolder } from '../store/download-folder.ts';
import { SqliteStore } from '../store/sqlite.ts';

export const DEFAULT_RELAY = 'http://127.0.0.1:8787';

export interface Home {
  readonly dir: string;
  readonly storePath: string;
  readonly downloads: string;
  relay: string;
}

export function openHome(dir: string | undefined, relayFlag: string | undefined): Home {
  const root = resolve(dir ?? process.env['PARLEY_HOME'] ?? join(homedir(), '.parley'));
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const configPath = join(root, 'config.json');
  const saved = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as { relay?: string }) : {};
  const relay = relayFlag ?? process.env['PARLEY_RELAY'] ?? saved.relay ?? DEFAULT_RELAY;
  if (relay !== saved.relay) writeFileSync(configPath, `${JSON.stringify({ relay }, null, 2)}\n`, { mode: 0o600 });
  return { dir: root, storePath: join(root, 'parley.sqlite'), downloads: join(root, 'downloads'), relay };
}

export interface Session {
  readonly client: ParleyClient;
  readonly store: SqliteStore;
  close(): Promise<void>;
}

function session(client: ParleyClient, store: SqliteStore): Session {
  return {
    client,
    store,
    async close() {
      await client.close();
      store.close();
    },
  };
}

export async function openClient(home: Home): Promise<Session> {
  const store = new SqliteStore(home.storePath);
  try {
    return session(
      await ParleyClient.open({ store, relay: connectRelayNode(home.relay), files: new DownloadFolder(home.downloads) }),
      store,
    );
  } catch (e) {
    store.close();
    throw e;
  }
}

export async function registerClient(home: Home): Promise<Session> {
  const store = new SqliteStore(home.storePath);
  try {
    return session(
      await ParleyClient.createAccount({ store, relay: connectRelayNode(home.relay), files: new DownloadFolder(home.downloads) }),
      store,
    );
  } catch (e) {
    store.close();
    throw e;
  }
}

export function linkRequest(home: Home): string {
  const store = new SqliteStore(home.storePath);
  try {
    return ParleyClient.requestLink({ store });
  } finally {
    store.close();
  }
}

export async function completeLink(home: Home, response: string): Promise<Session> {
  const store = new SqliteStore(home.storePath);
  try {
    return session(
      await ParleyClient.completeLink({ store, relay: connectRelayNode(home.relay), files: new DownloadFolder(home.downloads) }, response),
      store,
    );
  } catch (e) {
    store.close();
    throw e;
  }
}

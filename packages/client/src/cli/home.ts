/**
 * The CLI's home directory: one device per directory (so two terminals with
 * two homes are two people, or two devices of one person).
 *
 *   <home>/parley.sqlite   the SDK store (identity, sessions, history, outbox)
 *   <home>/config.json     { "relay": "http://127.0.0.1:8787" }
 *   <home>/downloads/      received attachments
 */
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
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

/** Where the home is and which relay it uses. Creates nothing: `parley help` or a typo leaves no trace. */
export function openHome(dir: string | undefined, relayFlag: string | undefined): Home {
  const root = resolve(dir ?? process.env['PARLEY_HOME'] ?? join(homedir(), '.parley'));
  const configPath = join(root, 'config.json');
  const saved = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as { relay?: string }) : {};
  const relay = relayFlag ?? process.env['PARLEY_RELAY'] ?? saved.relay ?? DEFAULT_RELAY;
  return { dir: root, storePath: join(root, 'parley.sqlite'), downloads: join(root, 'downloads'), relay };
}

/** Remembers the relay for this home (once the home holds an account). */
export function saveRelay(home: Home): void {
  const configPath = join(home.dir, 'config.json');
  const saved = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as { relay?: string }) : {};
  if (saved.relay !== home.relay) writeFileSync(configPath, `${JSON.stringify({ relay: home.relay }, null, 2)}\n`, { mode: 0o600 });
}

/** Creates the home directory; returns whether it was new (a failed setup then removes it again). */
export function makeHome(home: Home): boolean {
  const created = !existsSync(home.dir);
  mkdirSync(home.dir, { recursive: true, mode: 0o700 });
  return created;
}

/** True when this home holds a store (an account, or a link in progress). */
export function hasStore(home: Home): boolean {
  return existsSync(home.storePath);
}

/**
 * Undoes a setup that failed: the store and its journal files (they hold
 * keys the relay never accepted), the config, and the directory if this
 * setup created it. A retry then starts clean.
 */
export function removeSetup(home: Home, createdDir: boolean): void {
  for (const f of [
    home.storePath,
    `${home.storePath}-wal`,
    `${home.storePath}-shm`,
    `${home.storePath}-journal`,
    join(home.dir, 'config.json'),
  ])
    rmSync(f, { force: true });
  if (createdDir) {
    try {
      rmdirSync(home.dir);
    } catch {
      // Something else lives there (the lock socket is removed by its owner): leave the folder.
    }
  }
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

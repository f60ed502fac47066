/**
 * A real relay on loopback with the malicious-relay proxy in front of it,
 * and clients that talk only to the proxy. For the adversarial device tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningRelay, startServer, withDefaults } from '@parley/relay';
import { ParleyClient } from '../../src/client.ts';
import type { ClientOptions } from '../../src/engine/context.ts';
import { connectRelayNode } from '../../src/node.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { ClientStore } from '../../src/store/types.ts';
import { defaultProvider, toHex } from '@parley/core';
import { parseAccountId } from '../../src/state/ids.ts';
import { loadSession } from '../../src/state/sessions.ts';
import { TEST_OPTIONS, until } from '../support/harness.ts';
import { MaliciousRelay } from '../support/malicious-relay.ts';

export interface World {
  readonly relay: RunningRelay;
  readonly evil: MaliciousRelay;
  readonly connector: ReturnType<typeof connectRelayNode>;
  create(store?: ClientStore, options?: Partial<ClientOptions>): Promise<ParleyClient>;
  link(primary: ParleyClient, store?: ClientStore): Promise<ParleyClient>;
  close(): Promise<void>;
}

export async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-evil-'));
  const relay = await startServer(
    withDefaults({ host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', sweepIntervalSeconds: 3600 }),
  );
  const evil = await MaliciousRelay.start(relay.url);
  // Sends over HTTP: the proxy's send lies (divertEnvelopes, fabricateStale) rewrite POST /v1/messages.
  const connector = connectRelayNode(evil.url, { websocketSends: false });
  const clients: ParleyClient[] = [];
  return {
    relay,
    evil,
    connector,
    async create(store = new MemoryStore(), options = {}) {
      const c = await ParleyClient.createAccount({ store, relay: connector, options: { ...TEST_OPTIONS, ...options } });
      clients.push(c);
      await c.start();
      return c;
    },
    async link(primary, store = new MemoryStore()) {
      const response = await primary.approveLink(ParleyClient.requestLink({ store }));
      const c = await ParleyClient.completeLink({ store, relay: connector, options: TEST_OPTIONS }, response);
      clients.push(c);
      await c.start();
      return c;
    },
    async close() {
      for (const c of clients) await c.close();
      await evil.close();
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Texts received from others in a conversation. */
export const texts = (c: ParleyClient, conversation: string) =>
  c.history(conversation).flatMap((h) => (h.content.body.type === 'text' && !h.outgoing ? [h.content.body.text] : []));

/** Bundle fetches for an account's devices that went through the relay (each one is a fresh session). */
export const bundleFetches = (w: World, of: ParleyClient) =>
  // Both routes: the client asks /v2 first (a v1 bundle comes from there too) and /v1 only from a relay without it.
  w.evil.requests.filter((r) => r.method === 'GET' && /^\/v[12]\/keys\//.test(r.path) && r.path.includes(`/keys/${of.accountId}/`)).length;

export function sessionId(store: MemoryStore, peer: ParleyClient): string {
  const { record } = loadSession(store, { accountKey: parseAccountId(peer.accountId), deviceId: peer.deviceId }, defaultProvider());
  return record.sessionId ? toHex(record.sessionId) : 'none';
}

/** Alice and Bob, each with a working session with the other (both have answered). */
export async function talking(w: World) {
  const aliceStore = new MemoryStore();
  const bobStore = new MemoryStore();
  const alice = await w.create(aliceStore);
  const bob = await w.create(bobStore);
  await alice.addContact(bob.accountId, 'bob');
  await bob.addContact(alice.accountId, 'alice');
  await alice.sendText(bob.accountId, 'one');
  await until(() => texts(bob, alice.accountId).includes('one'), 10_000, 'one');
  await bob.sendText(alice.accountId, 'two');
  await until(() => texts(alice, bob.accountId).includes('two'), 10_000, 'two');
  await alice.sendText(bob.accountId, 'three');
  await until(() => texts(bob, alice.accountId).includes('three'), 10_000, 'three');
  return { alice, bob, aliceStore, bobStore };
}

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
import { TEST_OPTIONS } from '../support/harness.ts';
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
  const connector = connectRelayNode(evil.url);
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

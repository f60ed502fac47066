/**
 * Helpers for SDK tests: clients on a fake relay, and waiting for events.
 */
import { afterEach } from 'vitest';
import { ParleyClient } from '../../src/client.ts';
import type { ClientOptions } from '../../src/engine/context.ts';
import type { ClientEvents, EventName } from '../../src/events.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { ClientStore } from '../../src/store/types.ts';
import type { FakeRelay } from './fake-relay.ts';

/** Small prekey pools keep ML-KEM key generation (the slow part of setup) short. */
export const TEST_OPTIONS: Partial<ClientOptions> = { oneTimePreKeys: 5, kemPreKeys: 2, retryDelayMs: 20, blockedRetryMs: 100 };

export async function newClient(relay: FakeRelay, store: ClientStore = new MemoryStore()): Promise<ParleyClient> {
  const client = await ParleyClient.createAccount({ store, relay: relay.connector, options: TEST_OPTIONS });
  await client.start();
  return client;
}

/** Collects every event of one kind. */
export function record<E extends EventName>(client: ParleyClient, event: E): ClientEvents[E][] {
  const seen: ClientEvents[E][] = [];
  client.on(event, (e) => seen.push(e));
  return seen;
}

/** Resolves with the first event matching `predicate` (or rejects after `ms`). */
export function next<E extends EventName>(
  client: ParleyClient,
  event: E,
  predicate: (e: ClientEvents[E]) => boolean = () => true,
  ms = 10_000,
): Promise<ClientEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${event}`));
    }, ms);
    const off = client.on(event, (e) => {
      if (!predicate(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

/** Polls until `condition` holds (or fails after `ms`). */
export async function until(condition: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Registers an afterEach that closes every client handed to the returned
 * `track` (which returns its argument), so no test leaves a client running.
 */
export function closedAfterEach(): (...clients: ParleyClient[]) => ParleyClient {
  const open: ParleyClient[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close();
  });
  return (...clients) => {
    open.push(...clients);
    return clients[0] as ParleyClient;
  };
}

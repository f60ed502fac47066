/**
 * The scene most adversarial receive tests start from: a victim, an honest
 * friend and one hostile peer on a fake relay, with the victim's refusals and
 * warnings recorded from the start; plus the small probes they all use
 * (texts in a conversation, a device's address, "the relay holds nothing
 * for it", reopening a client on its store). One module, so the tests state
 * only what their attack changes.
 */
import { ParleyClient } from '../../src/client.ts';
import type { ClientEvents } from '../../src/events.ts';
import { type DeviceAddress, parseAccountId } from '../../src/state/ids.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { type ClientStore, TABLES } from '../../src/store/types.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { TEST_OPTIONS, newClient, record, until } from '../support/harness.ts';
import { MaliciousPeer } from '../support/malicious-peer.ts';

/** Every history entry of a conversation in order: its text, or '?' for another kind of body. */
export const historyTexts = (c: ParleyClient, conversation: string): string[] =>
  c.history(conversation).map((h) => (h.content.body.type === 'text' ? h.content.body.text : '?'));

export const addressOf = (c: ParleyClient): DeviceAddress => ({ accountKey: parseAccountId(c.accountId), deviceId: c.deviceId });

/** Resolves once the fake relay holds no envelope for `c` (everything it was sent is acknowledged). */
export const acknowledged = (relay: FakeRelay, c: ParleyClient, what = 'every envelope acknowledged', ms = 8000) =>
  until(() => relay.queued(addressOf(c)).length === 0, ms, what);

/** A byte-for-byte copy of a store, as a backup would hold it (the restore tests bring it back later). */
export function copyOf(store: MemoryStore, clock: () => number): MemoryStore {
  const copy = new MemoryStore({ clock });
  for (const t of TABLES) for (const e of store.list(t)) copy.put(t, e.key, e.value, e.expiresAt);
  return copy;
}

type Track = (...clients: ParleyClient[]) => ParleyClient;

/** Opens a closed client again on its store without starting it (it can act offline first). */
export async function reopenOffline(track: Track, store: ClientStore, relay: FakeRelay): Promise<ParleyClient> {
  return track(await ParleyClient.open({ store, relay: relay.connector, options: TEST_OPTIONS }));
}

/** Opens a closed client again on its store (a restart) and starts it. */
export async function reopen(track: Track, store: ClientStore, relay: FakeRelay): Promise<ParleyClient> {
  const again = await reopenOffline(track, store, relay);
  await again.start();
  return again;
}

export interface HostileScene {
  readonly relay: FakeRelay;
  /** The victim's store (to restart it or look inside). */
  readonly store: ClientStore;
  readonly victim: ParleyClient;
  readonly friend: ParleyClient;
  readonly attacker: MaliciousPeer;
  /** The victim's 'undecryptable' events since the scene was set up. */
  readonly refused: ClientEvents['undecryptable'][];
  /** The victim's 'warning' events since the scene was set up. */
  readonly warnings: ClientEvents['warning'][];
}

/** Victim, friend and attacker on a fresh fake relay; every client is closed by `track` after the test. */
export async function hostileScene(track: Track, store: ClientStore = new MemoryStore()): Promise<HostileScene> {
  const relay = new FakeRelay();
  const victim = track(await newClient(relay, store));
  const friend = track(await newClient(relay));
  const attacker = await MaliciousPeer.create(relay.connector);
  track(attacker.client);
  return { relay, store, victim, friend, attacker, refused: record(victim, 'undecryptable'), warnings: record(victim, 'warning') };
}

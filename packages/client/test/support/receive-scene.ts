/**
 * One victim, one honest friend and two hostile accounts on a fake relay:
 * the scene the receive-path property test and fuzz script share. The
 * first attacker shares a group with the victim (so it can send on a real
 * group chain); the second is a stranger. `probe` proves the inbox is not
 * blocked: a legitimate message from the friend arrives and every envelope
 * is acknowledged; `restart` reopens the victim on the same store.
 * No vitest import: it also runs under plain Node (the fuzz script).
 */
import { encodeCbor } from '@parley/core';
import { ParleyClient } from '../../src/client.ts';
import type { ClientEvents } from '../../src/events.ts';
import { parseAccountId } from '../../src/state/ids.ts';
import { parseConversationId } from '../../src/state/conversation-id.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { FakeRelay } from './fake-relay.ts';
import type { Target } from './hostile.ts';
import { ContentType, MaliciousPeer, rawContent } from './malicious-peer.ts';

const OPTIONS = { oneTimePreKeys: 5, kemPreKeys: 2, retryDelayMs: 20, blockedRetryMs: 100 };

export interface Tally {
  /** Refusals whose code is INTERNAL: an untyped error reached the boundary. */
  untyped: number;
  refused: number;
  warnings: number;
  listenerErrors: number;
  /** Codes seen, with counts. */
  readonly codes: Map<string, number>;
}

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export class ReceiveScene {
  readonly relay = new FakeRelay();
  readonly store = new MemoryStore();
  victim!: ParleyClient;
  friend!: ParleyClient;
  attackers: MaliciousPeer[] = [];
  targets: Target[] = [];
  firstContacts: Uint8Array[] = [];
  readonly tally: Tally = { untyped: 0, refused: 0, warnings: 0, listenerErrors: 0, codes: new Map() };
  #probes = 0;

  static async create(): Promise<ReceiveScene> {
    const scene = new ReceiveScene();
    await scene.#setup();
    return scene;
  }

  async #setup(): Promise<void> {
    this.victim = await ParleyClient.createAccount({ store: this.store, relay: this.relay.connector, options: OPTIONS });
    this.#listen(this.victim);
    await this.victim.start();
    this.friend = await ParleyClient.createAccount({ store: new MemoryStore(), relay: this.relay.connector, options: OPTIONS });
    await this.friend.start();
    this.attackers = [await MaliciousPeer.create(this.relay.connector), await MaliciousPeer.create(this.relay.connector)];
    const [member, stranger] = this.attackers as [MaliciousPeer, MaliciousPeer];
    const account = this.victim.accountId;
    // The victim trusts no device of an account whose signed list it has not seen.
    for (const a of [member, stranger]) await a.introduce(account);
    const conversation = await member.client.createGroup('g', [account]);
    await until(() => this.victim.group(conversation) !== null, 10_000, 'the victim to join the group');
    await member.client.sendText(conversation, 'chain');
    await until(() => this.victim.history(conversation).length === 1, 10_000, "the member's chain");
    const ref = parseConversationId(conversation);
    const groupId = ref.kind === 'group' ? ref.groupId : new Uint8Array(32);
    const base = { account, accountKey: parseAccountId(account), deviceId: this.victim.deviceId };
    this.targets = [
      { ...base, group: { conversation, groupId } },
      { ...base, group: null },
    ];
    // A first-contact PreKeyMessage per attacker with a broken inner tag: replayable, each costing a handshake.
    for (const a of [member, stranger]) {
      const { envelope } = await a.firstContact(account, encodeCbor(rawContent({ type: ContentType.text, body: ['x'] })));
      const b = envelope.slice();
      b[b.length - 1] = (b[b.length - 1] as number) ^ 1;
      this.firstContacts.push(b);
    }
    await this.probe();
    // From here the attackers only send. Their own receive loops would take the victim's retry
    // requests and move their sessions to the fresh ones the victim starts, so later hostile inputs
    // would mostly fail to decrypt and never reach the code behind decryption.
    for (const a of this.attackers) await a.client.close();
  }

  #listen(c: ParleyClient): void {
    const count = (code: string) => this.tally.codes.set(code, (this.tally.codes.get(code) ?? 0) + 1);
    c.on('undecryptable', (e: ClientEvents['undecryptable']) => {
      this.tally.refused++;
      if (e.code === 'INTERNAL') this.tally.untyped++;
      count(e.code);
    });
    c.on('warning', (e) => {
      this.tally.warnings++;
      count(`warning:${e.code}`);
    });
    c.on('listener-error', () => this.tally.listenerErrors++);
  }

  /** Envelopes waiting on the relay for the victim. */
  get stuck(): number {
    return this.relay.queued({ accountKey: parseAccountId(this.victim.accountId), deviceId: this.victim.deviceId }).length;
  }

  /** Sends a legitimate message from the friend and waits until the victim stored it and the relay holds nothing for it. */
  async probe(ms = 10_000): Promise<void> {
    const text = `probe ${++this.#probes}`;
    // Waits on the event rather than polling history: the history grows with every hostile text stored.
    let arrived = false;
    const off = this.victim.on('message', (m) => {
      if (m.body.type === 'text' && m.body.text === text) arrived = true;
    });
    try {
      await this.friend.sendText(this.victim.accountId, text);
      await until(() => arrived, ms, `the legitimate message "${text}"`);
    } finally {
      off();
    }
    await until(() => this.stuck === 0, ms, 'every envelope to be acknowledged');
  }

  /** Closes the victim and opens it again on the same store. */
  async restart(): Promise<void> {
    await this.victim.close();
    this.victim = await ParleyClient.open({ store: this.store, relay: this.relay.connector, options: OPTIONS });
    this.#listen(this.victim);
    await this.victim.start();
  }

  async close(): Promise<void> {
    await this.victim.close();
    await this.friend.close();
    for (const a of this.attackers) await a.close();
  }
}

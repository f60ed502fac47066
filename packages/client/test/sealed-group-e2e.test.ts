/**
 * A group message sealed to 100 devices through the real relay (issue 16,
 * spec/12-sealed-sender.md §10): 100 member accounts grant Alice a token,
 * she creates the group, and one text goes as ONE sealed group request (the
 * payload stored once, a seal of the key wrap per device). Every member reads
 * it through the normal group path. No row of the group send (in any table)
 * and no log line at debug level names Alice. A payload swapped under a
 * genuine seal is refused (SEAL_FAILED, payload-digest) with the group state
 * and sessions unchanged.
 */
import { seal, toHex } from '@parley/core';
import { afterAll, describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { connectRelayNode } from '../src/node.ts';
import { getHeld } from '../src/sealed/token-book.ts';
import { parseAccountId, toBase64Url } from '../src/state/ids.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { TEST_OPTIONS, record, until } from './support/harness.ts';
import { loopbackRelay } from './support/loopback-relay.ts';
import { type Row, auditInserts, identifiersOf, mentions, rows, sealedRowsNaming } from './support/sealed-scan.ts';

/** Recipient devices of the sealed group send (one device per member account). */
const MEMBERS = 100;

const relay = loopbackRelay('sealed-group', {
  scope: 'all',
  // 101 clients on one address: more connections and requests from 127.0.0.1 than one real address makes.
  config: { limits: { maxConnectionsPerAddress: 1024 }, rateLimits: { requestsPerMinutePerIp: 1_000_000 } },
  debugLogs: true,
});
const clients: ParleyClient[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

async function create(connector: ReturnType<typeof connectRelayNode>): Promise<{ client: ParleyClient; store: MemoryStore }> {
  const store = new MemoryStore();
  const client = await ParleyClient.createAccount({ store, relay: connector, options: { ...TEST_OPTIONS, sealedSender: true } });
  clients.push(client);
  listen(client);
  await client.start();
  return { client, store };
}

/** Texts each client received, by conversation, from its events (polling the history of 100 clients would cost more than the test). */
const received = new Map<ParleyClient, string[]>();
function listen(c: ParleyClient): void {
  const seen: string[] = [];
  received.set(c, seen);
  c.on('message', (m) => {
    if (m.body.type === 'text') seen.push(`${m.conversation}:${m.body.text}`);
  });
}
const got = (c: ParleyClient, conversation: string, text: string) => received.get(c)?.includes(`${conversation}:${text}`) === true;

/** Runs `task` over `items`, `width` at a time (the machine is small; 100 handshakes at once would only queue). */
async function inBatches<T>(items: readonly T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(task));
}

describe('a group message sealed to 100 devices through the real relay', () => {
  it('goes as one sealed group request, every member reads it, and nothing at the relay names the sender', async () => {
    const url = relay.url;
    auditInserts(relay.dbPath);
    const connector = connectRelayNode(url);
    const alice = await create(connector);
    const aliceKey = parseAccountId(alice.client.accountId);
    const members: { client: ParleyClient; store: MemoryStore }[] = [];
    for (let i = 0; i < MEMBERS; i++) members.push(await create(connector));

    // Each member makes Alice a contact and grants her a token (its first message to her is identified).
    await inBatches(members, 10, async (m) => {
      await m.client.addContact(alice.client.accountId, 'alice');
      await m.client.maintain();
    });
    const memberKeys = members.map((m) => parseAccountId(m.client.accountId));
    await until(() => memberKeys.every((k) => getHeld(alice.store, k, Date.now()) !== null), 60_000, 'every member granted Alice a token');

    const joined = new Set<ParleyClient>();
    for (const m of members) m.client.on('group-change', () => joined.add(m.client));
    const group = await alice.client.createGroup(
      'hundred',
      members.map((m) => m.client.accountId),
    );
    await until(() => joined.size === MEMBERS, 60_000, 'every member joined');
    await alice.client.flush();

    const mark = rows(relay.dbPath, 'audit_messages').length;
    const logsFrom = relay.logs.length;
    const sealedBefore = await sealedGroupRequests();
    await alice.client.sendText(group, 'to a hundred devices, sealed');
    await until(() => members.every((m) => got(m.client, group, 'to a hundred devices, sealed')), 60_000, 'every member read it');

    // One request: 100 rows, each with its own seal, all referring to one stored payload, none naming a sender.
    const groupRows = rows(relay.dbPath, 'audit_messages')
      .slice(mark)
      .filter((r) => r['payload_id'] !== 'null' && r['recipient_account'] !== toHex(aliceKey));
    expect(groupRows).toHaveLength(MEMBERS);
    expect(new Set(groupRows.map((r) => r['payload_id'])).size).toBe(1);
    for (const r of groupRows) {
      expect(r['sender_device']).toBe('0');
      // The row holds only its device's seal (the payload is stored once, apart).
      expect((r['envelope'] as string).length / 2).toBeLessThan(256);
    }
    expect((await sealedGroupRequests()) - sealedBefore).toBe(1);

    // Nothing in any row of the sealed sends names Alice (or a member other than as the row's mailbox).
    const named = identifiersOf(relay.dbPath, [aliceKey, ...members.slice(0, 10).map((m) => parseAccountId(m.client.accountId))]);
    const tokenHashes = [...new Set(groupRows.map((r) => r['sender_account'] as string))];
    expect(tokenHashes).toHaveLength(MEMBERS);
    expect(sealedRowsNaming(relay.dbPath, tokenHashes, named)).toEqual([]);
    // Nor any log line written while it went through.
    const aliceNames = identifiersOf(relay.dbPath, [aliceKey]);
    for (const line of relay.logs.slice(logsFrom)) for (const v of aliceNames) expect(mentions(line, v), line).toBe(false);

    // A payload swapped under a genuine seal: the member refuses it before touching any group state.
    const victim = members[0] as { client: ParleyClient; store: MemoryStore };
    const victimKey = parseAccountId(victim.client.accountId);
    const row = groupRows.find((r) => r['recipient_account'] === toHex(victimKey)) as Row;
    const token = getHeld(alice.store, victimKey, Date.now())?.token as Uint8Array;
    const failures = record(victim.client, 'undecryptable');
    const snapshot = () =>
      JSON.stringify(['groups', 'sessions'].map((t) => victim.store.list(t as 'groups').map((e) => [e.key, toHex(e.value)])));
    const before = snapshot();
    const other = seal.sealGroupPayload(new TextEncoder().encode('not the payload the wrap names'));
    const r = await fetch(`${url}/v2/sealed`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        payload: toBase64Url(other.payload),
        messages: [
          {
            account: victim.client.accountId,
            deviceId: 1,
            id: 'swapped-payload',
            token: toBase64Url(token),
            envelope: toBase64Url(Buffer.from(row['envelope'] as string, 'hex')),
          },
        ],
      }),
    });
    expect(r.status).toBe(200);
    await until(() => failures.some((f) => f.clientId === 'swapped-payload'), 15_000, 'swapped payload refused');
    const failure = failures.find((f) => f.clientId === 'swapped-payload');
    expect(failure?.code).toBe('SEAL_FAILED');
    expect(snapshot()).toBe(before);
    // The group still works for that member.
    await alice.client.sendText(group, 'after the swap');
    await until(() => got(victim.client, group, 'after the swap'), 30_000, 'after the swap');
  }, 180_000);
});

/** Sealed group requests the relay accepted: stored-once payloads made by /v2/sealed (the fan-out metric counts both routes). */
async function sealedGroupRequests(): Promise<number> {
  const payloads = new Set(
    rows(relay.dbPath, 'audit_messages')
      .filter((r) => r['payload_id'] !== 'null' && r['sender_device'] === '0')
      .map((r) => r['payload_id']),
  );
  return payloads.size;
}

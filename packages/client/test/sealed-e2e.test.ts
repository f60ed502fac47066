/**
 * Sealed sender end to end (spec/12-sealed-sender.md): two clients with
 * sealed sending on, through the real relay (SQLite file, log at debug
 * level). After the first identified contact and the token grants, every
 * message and receipt goes sealed: every row the relay wrote for them (an
 * insert trigger keeps copies of envelopes deleted on acknowledgement) and
 * every log line is searched for either account's key, device keys and
 * certificate hashes. Then: a revoked token refused and the message still
 * delivered identified; an expired token refreshed; a client with sealed
 * sending off (as before this change) talks with one that has it on.
 */
import {
  Account,
  certificateHash,
  checkFrankingTag,
  checkRelayFrank,
  decodeCertificate,
  defaultProvider,
  fromHex,
  seal,
  toHex,
} from '@parley/core';
import { decodeContent } from '../src/content/content.ts';
import { listFranked } from '../src/franking/store.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { parseAccountId, toBase64Url } from '../src/state/ids.ts';
import { connectRelayNode } from '../src/node.ts';
import { getHeld } from '../src/sealed/token-book.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { TEST_OPTIONS, record, until } from './support/harness.ts';
import { loopbackRelay } from './support/loopback-relay.ts';
import {
  type Row,
  auditInserts as auditSealedInserts,
  identifiersOf,
  mentions,
  rows as tableRows,
  sealedRowsNaming,
} from './support/sealed-scan.ts';

const clock = { offset: 0, now: () => Date.now() + clock.offset };
const relay = loopbackRelay('sealed-e2e', {
  scope: 'all',
  // The window for signed timestamps is wide so the test can move the relay's clock by weeks.
  config: { authWindowSeconds: 200 * 86_400 },
  now: clock.now,
  debugLogs: true,
});
const clients: ParleyClient[] = [];
const stores: MemoryStore[] = [];
const DAY = 86_400_000;

afterAll(async () => {
  for (const c of clients) await c.close();
});

const auditInserts = () => auditSealedInserts(relay.dbPath);
const rows = (table: string) => tableRows(relay.dbPath, table);

const texts = (c: ParleyClient, conversation: string) =>
  c.history(conversation).map((h) => (h.content.body.type === 'text' ? h.content.body.text : '?'));

async function create(
  connector: ReturnType<typeof connectRelayNode>,
  sealedSender: boolean,
): Promise<{ client: ParleyClient; store: MemoryStore }> {
  const store = new MemoryStore({ clock: clock.now });
  const client = await ParleyClient.createAccount({
    store,
    relay: connector,
    clock: clock.now,
    options: { ...TEST_OPTIONS, sealedSender },
  });
  clients.push(client);
  stores.push(store);
  await client.start();
  return { client, store };
}

describe('sealed sender through the real relay', () => {
  it('after the grants, messages and receipts go sealed, and no sealed row or log line names the sender', async () => {
    const url = relay.url;
    auditInserts();
    const connector = connectRelayNode(url);
    const alice = await create(connector, true);
    const bob = await create(connector, true);
    const aliceKey = parseAccountId(alice.client.accountId);
    const bobKey = parseAccountId(bob.client.accountId);
    await alice.client.addContact(bob.client.accountId, 'bob');
    await bob.client.addContact(alice.client.accountId, 'alice');

    // First contact: identified (no token yet).
    await alice.client.sendText(bob.client.accountId, 'first, identified');
    await until(() => texts(bob.client, alice.client.accountId).includes('first, identified'), 15_000, 'first message');
    // Upkeep grants tokens to contacts; each side then holds the other's.
    await alice.client.maintain();
    await bob.client.maintain();
    await until(
      () => getHeld(alice.store, bobKey, clock.now()) !== null && getHeld(bob.store, aliceKey, clock.now()) !== null,
      15_000,
      'grants',
    );
    // Grants came from the pool registered ahead (16 hashes per account), not from a registration at grant time.
    const registered = rows('delivery_tokens').filter((r) => r['account'] === toHex(bobKey));
    expect(registered.length).toBe(16);
    const sealedFrom = rows('audit_messages').length;
    const logsFrom = relay.logs.length;

    await alice.client.sendText(bob.client.accountId, 'sealed one');
    await until(() => texts(bob.client, alice.client.accountId).includes('sealed one'), 15_000, 'sealed one');
    await bob.client.sendText(alice.client.accountId, 'sealed two');
    await until(() => texts(alice.client, bob.client.accountId).includes('sealed two'), 15_000, 'sealed two');
    await alice.client.flush();
    await bob.client.flush();

    // v2 sessions: the sealed text came with its franking tag (in the seal's aad and franked by the relay with no
    // sender), and Bob keeps it for reports, marked sealed; the identified first contact is franked too.
    const franked = listFranked(bob.store, alice.client.accountId);
    const byText = (t: string) =>
      franked.find((m) => {
        const body = decodeContent(m.plaintext).body;
        return body.type === 'text' && body.text === t;
      });
    expect(byText('sealed one')?.sealed).toBe(true);
    expect(byText('first, identified')?.sealed).toBe(false);
    for (const m of franked)
      expect(checkFrankingTag(defaultProvider().backend, m.frankingKey, m.sender, m.plaintext, m.delivery.frankingTag)).toBe(true);
    // The relay franked the sealed one with no sender (it does not know it), the identified one naming Alice's device.
    const keys = (relay.app as unknown as { relay: { frankKeys: { forVerify(id: number, now: number): Promise<Uint8Array | null> } } })
      .relay.frankKeys;
    for (const m of franked) {
      const key = (await keys.forVerify(m.delivery.frankKeyId, clock.now())) as Uint8Array;
      const input = {
        keyId: m.delivery.frankKeyId,
        frankingTag: m.delivery.frankingTag,
        recipient: { accountKey: bobKey, deviceId: m.recipientDevice },
        acceptedAt: m.delivery.acceptedAt,
        envelopeId: m.delivery.envelopeId,
        sender: m.sealed ? null : m.sender,
      };
      expect(checkRelayFrank(defaultProvider().backend, key, input, m.delivery.frank)).toBe(true);
    }

    const sent = rows('audit_messages').slice(sealedFrom);
    // Two texts and the receipts for them, every one sealed: device 0, a token hash in the sender slot.
    expect(sent.length).toBeGreaterThanOrEqual(2);
    for (const r of sent) expect(r['sender_device']).toBe('0');
    const senderSlots = new Set(sent.map((r) => r['sender_account']));
    expect(senderSlots.has(toHex(aliceKey))).toBe(false);
    expect(senderSlots.has(toHex(bobKey))).toBe(false);

    // What names either client: account keys, device certificates, their keys and hashes (hex and base64url).
    const named = identifiersOf(relay.dbPath, [aliceKey, bobKey]);
    // The sealed envelopes and their index rows (idempotency, shares, tokens, budgets) in every table.
    expect(sealedRowsNaming(relay.dbPath, [...senderSlots] as string[], named)).toEqual([]);
    // Every log line written while the sealed messages went through, at debug level.
    const sealedLogs = relay.logs.slice(logsFrom);
    expect(sealedLogs.some((l) => l.includes('/v2/sealed'))).toBe(true);
    for (const line of sealedLogs) for (const v of named) expect(mentions(line, v), line).toBe(false);
  }, 60_000);

  it('a revoked token is refused; the message then goes identified and still arrives', async () => {
    const [alice, bob] = clients as [ParleyClient, ParleyClient];
    const before = rows('audit_messages').length;
    expect(await bob.revokeDeliveryTokens(alice.accountId)).toBeGreaterThan(0);
    await alice.sendText(bob.accountId, 'after the block');
    await until(() => texts(bob, alice.accountId).includes('after the block'), 15_000, 'identified fallback');
    const sent = rows('audit_messages').slice(before);
    // Refused sealed (nothing stored under the revoked token), then stored identified from Alice.
    expect(sent.some((r) => r['sender_account'] === toHex(parseAccountId(alice.accountId)))).toBe(true);
  }, 30_000);

  it('an expired token is refused by the relay and refreshed by the recipient; sends go sealed again', async () => {
    const [alice, bob] = clients as [ParleyClient, ParleyClient];
    // Bob grants again (his last grant to Alice was revoked), Alice holds it.
    await bob.maintain();
    await until(() => rows('delivery_tokens').length >= 2, 15_000, 'a fresh grant registered');
    // 31 days later every token has expired at the relay.
    clock.offset += 31 * DAY;
    const before = rows('audit_messages').length;
    await alice.sendText(bob.accountId, 'after expiry');
    await until(() => texts(bob, alice.accountId).includes('after expiry'), 15_000, 'identified after expiry');
    expect(
      rows('audit_messages')
        .slice(before)
        .some((r) => r['sender_device'] !== '0'),
    ).toBe(true);
    // Bob's upkeep refreshes; Alice's next send is sealed again.
    await bob.maintain();
    await alice.maintain();
    await new Promise((r) => setTimeout(r, 300));
    await alice.flush();
    await bob.flush();
    const mark = rows('audit_messages').length;
    await alice.sendText(bob.accountId, 'sealed again');
    await until(() => texts(bob, alice.accountId).includes('sealed again'), 15_000, 'sealed again');
    const after = rows('audit_messages').slice(mark);
    const fromAlice = after.filter((r) => r['recipient_account'] === toHex(parseAccountId(bob.accountId)));
    expect(fromAlice.length).toBeGreaterThan(0);
    expect(fromAlice.every((r) => r['sender_device'] === '0')).toBe(true);
  }, 30_000);

  it('a wrong seal (another sender under a stolen token) and a replayed seal are refused with typed errors, sessions unchanged', async () => {
    const [alice, bob] = clients as [ParleyClient, ParleyClient];
    const [aliceStore, bobStore] = stores as [MemoryStore, MemoryStore];
    const url = relay.url;
    await alice.flush();
    await bob.flush();
    const bobKey = parseAccountId(bob.accountId);
    const held = getHeld(aliceStore, bobKey, clock.now());
    expect(held).not.toBeNull();
    const token = held?.token as Uint8Array;
    const tokenHash = seal.deliveryTokenHash(bobKey, token);
    const failures = record(bob, 'undecryptable');
    const sessionsBefore = JSON.stringify(bobStore.list('sessions').map((e) => [e.key, toHex(e.value)]));
    const bobDevice = rows('devices').find((r) => r['account'] === toHex(bobKey)) as Row;
    const bobCert = decodeCertificate(fromHex(bobDevice['certificate'] as string));
    const post = (envelope: Uint8Array, id: string, frankingTag?: Uint8Array) =>
      fetch(`${url}/v2/sealed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          messages: [
            {
              account: bob.accountId,
              deviceId: 1,
              id,
              token: toBase64Url(token),
              envelope: toBase64Url(envelope),
              ...(frankingTag ? { frankingTag: toBase64Url(frankingTag) } : {}),
            },
          ],
        }),
      });

    // The last sealed envelope Alice really sent (replayed below).
    const last = rows('audit_messages')
      .filter((r) => r['sender_account'] === toHex(tokenHash))
      .at(-1) as Row;
    // Mallory stole Alice's token for Bob and seals with her own device key: the relay cannot tell, Bob can.
    const mallory = Account.generate().createDevice(1);
    const forged = seal.sealToContact({
      recipientIdentityKey: bobCert.identityKey,
      recipientCertificateHash: certificateHash(bobCert),
      senderIdentityPrivateKey: mallory.identityKeyPair.privateKey,
      senderDeviceId: 1,
      tokenHash,
      frankingTag: null,
      message: new Uint8Array(40).fill(7),
    });
    expect((await post(forged, 'forged-1')).status).toBe(200);
    await until(() => failures.some((f) => f.clientId === 'forged-1'), 15_000, 'forged refused');
    expect(failures.find((f) => f.clientId === 'forged-1')?.code).toBe('SEAL_FAILED');
    // Refused before any session was touched: every session record byte-identical.
    expect(JSON.stringify(bobStore.list('sessions').map((e) => [e.key, toHex(e.value)]))).toBe(sessionsBefore);

    // Alice's real sealed envelope posted again under a new id, with its franking tag (v2 sessions: the seal's aad
    // binds the tag, the last 32 bytes of the stored delivery record): the seal opens, the ratchet refuses it.
    const tag = fromHex(last['delivery'] as string).slice(-32);
    expect((await post(fromHex(last['envelope'] as string), 'replayed-1', tag)).status).toBe(200);
    await until(() => failures.some((f) => f.clientId === 'replayed-1'), 15_000, 'replay refused');
    const replay = failures.find((f) => f.clientId === 'replayed-1');
    expect(replay?.code).toBe('DUPLICATE_MESSAGE');
    // Attributed to Alice's device (the seal opened), which gets the usual retry request on the current session (spec/10 §6).
    expect(replay?.sender).toEqual({ account: alice.accountId, deviceId: 1 });

    // Still talking afterwards.
    await alice.sendText(bob.accountId, 'after the attacks');
    await until(() => texts(bob, alice.accountId).includes('after the attacks'), 15_000, 'after attacks');
  }, 30_000);

  it('holds delivery receipts back (statistical disclosure) until a message to that peer carries them', async () => {
    const [alice, bob] = clients as [ParleyClient, ParleyClient];
    const receipts = record(alice, 'receipt');
    const mark = rows('audit_messages').length;
    const sent = await alice.sendText(bob.accountId, 'receipt me later');
    await until(() => texts(bob, alice.accountId).includes('receipt me later'), 15_000, 'delivered');
    await bob.flush();
    await alice.flush();
    // The receipt waits (30-300 s by default): nothing for this message yet, though the outbox is empty.
    expect(receipts.some((r) => r.messageId === sent.messageId)).toBe(false);
    // Bob writes to Alice: the held receipt goes out with it.
    await bob.sendText(alice.accountId, 'a reply');
    await until(() => receipts.some((r) => r.messageId === sent.messageId && r.status === 'delivered'), 15_000, 'receipt rode along');
    // The text, the reply and the receipt: all sealed.
    const window = rows('audit_messages').slice(mark);
    expect(window.length).toBeGreaterThanOrEqual(3);
    for (const r of window) expect(r['sender_device']).toBe('0');
  }, 30_000);

  it('releases a held receipt when its random delay runs out', async () => {
    const connector = connectRelayNode(relay.url);
    const quick = { receiptDelayMs: { min: 20, max: 60 } };
    const make = async () => {
      const store = new MemoryStore({ clock: clock.now });
      const client = await ParleyClient.createAccount({
        store,
        relay: connector,
        clock: clock.now,
        options: { ...TEST_OPTIONS, sealedSender: true, ...quick },
      });
      clients.push(client);
      stores.push(store);
      await client.start();
      return { client, store };
    };
    const carol = await make();
    const dave = await make();
    await carol.client.addContact(dave.client.accountId, 'dave');
    await dave.client.addContact(carol.client.accountId, 'carol');
    await carol.client.maintain();
    await dave.client.maintain();
    const daveKey = parseAccountId(dave.client.accountId);
    const carolKey = parseAccountId(carol.client.accountId);
    await until(
      () => getHeld(carol.store, daveKey, clock.now()) !== null && getHeld(dave.store, carolKey, clock.now()) !== null,
      15_000,
      'grants',
    );
    const receipts = record(carol.client, 'receipt');
    const sent = await carol.client.sendText(dave.client.accountId, 'timer receipt');
    await until(
      () => receipts.some((r) => r.messageId === sent.messageId && r.status === 'delivered'),
      15_000,
      'timer released the receipt',
    );
  }, 30_000);

  it('interoperates with a client that has sealed sending off (as before this change)', async () => {
    const connector = connectRelayNode(relay.url);
    const alice = clients[0] as ParleyClient;
    const old = await create(connector, false);
    await alice.addContact(old.client.accountId, 'old');
    await old.client.addContact(alice.accountId, 'alice');
    await alice.maintain();
    await old.client.maintain();
    const before = rows('audit_messages').length;
    await alice.sendText(old.client.accountId, 'to the old client');
    await until(() => texts(old.client, alice.accountId).includes('to the old client'), 15_000, 'to old');
    await old.client.sendText(alice.accountId, 'from the old client');
    await until(() => texts(alice, old.client.accountId).includes('from the old client'), 15_000, 'from old');
    // The client with sealed sending off granted nothing: Alice holds no token for it, and both directions went identified.
    expect(getHeld(stores[0] as MemoryStore, parseAccountId(old.client.accountId), clock.now())).toBeNull();
    const oldKey = toHex(parseAccountId(old.client.accountId));
    const sent = rows('audit_messages').slice(before);
    expect(sent.some((r) => r['sender_account'] === oldKey)).toBe(true);
    expect(sent.some((r) => r['sender_account'] === toHex(parseAccountId(alice.accountId)) && r['recipient_account'] === oldKey)).toBe(
      true,
    );
  }, 30_000);
});

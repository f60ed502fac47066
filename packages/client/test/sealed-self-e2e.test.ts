/**
 * Self tokens and interoperation through the real relay (spec/12-sealed-sender.md
 * §11, §13). Alice has a phone and a laptop, Bob one device, all with sealed
 * sending on; Olga has it off (as a client from before sealed sending).
 *
 * 1. Self tokens: each of Alice's devices holds her account's self token, so
 *    a message to Bob and its copy to her laptop go in ONE sealed request:
 *    no row of it names Alice (the relay no longer sees an identified copy at
 *    the same moment), the laptop reads the transcript, and the phone drops
 *    its own echo unread.
 * 2. The same for a group message (a sealed group send with the laptop in it).
 * 3. Interoperation: a group with Olga, and 1:1 with her, work both ways
 *    (identified where no token is held), next to sealed traffic.
 */
import { type DeviceIdentity, certificateHash, defaultProvider, seal, toHex } from '@parley/core';
import { afterAll, describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { connectRelayNode } from '../src/node.ts';
import { getHeld } from '../src/sealed/token-book.ts';
import { loadIdentity } from '../src/state/identity.ts';
import { parseAccountId, toBase64Url } from '../src/state/ids.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { TEST_OPTIONS, record, until } from './support/harness.ts';
import { loopbackRelay } from './support/loopback-relay.ts';
import { auditInserts, identifiersOf, mentions, rows, sealedRowsNaming } from './support/sealed-scan.ts';

const relay = loopbackRelay('sealed-self', { scope: 'all', debugLogs: true });
const clients: ParleyClient[] = [];

afterAll(async () => {
  for (const c of clients) await c.close();
});

const received = new Map<ParleyClient, string[]>();
function track(c: ParleyClient): ParleyClient {
  const seen: string[] = [];
  received.set(c, seen);
  c.on('message', (m) => {
    if (m.body.type === 'text') seen.push(`${m.outgoing ? '>' : '<'}${m.conversation}:${m.body.text}`);
  });
  clients.push(c);
  return c;
}
const got = (c: ParleyClient, line: string) => received.get(c)?.includes(line) === true;

interface Scene {
  phone: ParleyClient;
  phoneStore: MemoryStore;
  laptop: ParleyClient;
  laptopStore: MemoryStore;
  bob: ParleyClient;
  bobStore: MemoryStore;
  olga: ParleyClient;
  url: string;
  aliceKey: Uint8Array;
}
let scene: Scene;

describe('self tokens and interoperation through the real relay', () => {
  it('a message to a contact and its copy to our other device go in one sealed request that names no sender', async () => {
    const url = relay.url;
    auditInserts(relay.dbPath);
    const connector = connectRelayNode(url);
    const make = async (sealedSender: boolean) => {
      const store = new MemoryStore();
      const client = track(await ParleyClient.createAccount({ store, relay: connector, options: { ...TEST_OPTIONS, sealedSender } }));
      await client.start();
      return { client, store };
    };
    const phone = await make(true);
    const bob = await make(true);
    const olga = await make(false);
    const laptopStore = new MemoryStore();
    const response = await phone.client.approveLink(ParleyClient.requestLink({ store: laptopStore }));
    const laptop = track(
      await ParleyClient.completeLink({ store: laptopStore, relay: connector, options: { ...TEST_OPTIONS, sealedSender: true } }, response),
    );
    await laptop.start();
    await phone.client.flush();
    const aliceKey = parseAccountId(phone.client.accountId);
    const bobKey = parseAccountId(bob.client.accountId);
    scene = {
      phone: phone.client,
      phoneStore: phone.store,
      laptop,
      laptopStore,
      bob: bob.client,
      bobStore: bob.store,
      olga: olga.client,
      aliceKey,
      url,
    };

    await phone.client.addContact(bob.client.accountId, 'bob');
    await bob.client.addContact(phone.client.accountId, 'alice');
    await phone.client.sendText(bob.client.accountId, 'first, identified');
    await until(() => got(bob.client, `<${phone.client.accountId}:first, identified`), 15_000, 'first message');
    // Upkeep: Bob grants Alice a token; Alice's phone grants her own account a self token and syncs it to the laptop.
    await bob.client.maintain();
    await phone.client.maintain();
    await laptop.maintain();
    const selfToken = (store: MemoryStore) => store.get('identity', 'sealed/self');
    await until(
      () => getHeld(phone.store, bobKey, Date.now()) !== null && selfToken(phone.store) !== null && selfToken(laptopStore) !== null,
      15_000,
      'Bob’s token and the self tokens',
    );
    // Each announcement is with the relay and read by the other device before the self tokens are used.
    await phone.client.flush();
    await laptop.flush();
    await bob.client.flush();
    await new Promise((r) => setTimeout(r, 300));

    const echoes = record(phone.client, 'undecryptable');
    const laptopFailures = record(laptop, 'undecryptable');
    const mark = rows(relay.dbPath, 'audit_messages').length;
    const logsFrom = relay.logs.length;
    await phone.client.sendText(bob.client.accountId, 'sealed, with a sealed copy');
    await until(() => got(bob.client, `<${phone.client.accountId}:sealed, with a sealed copy`), 15_000, 'Bob reads it');
    await until(() => got(laptop, `>${bob.client.accountId}:sealed, with a sealed copy`), 15_000, 'the laptop reads the transcript');
    await phone.client.flush();

    const sent = rows(relay.dbPath, 'audit_messages').slice(mark);
    const toAlice = sent.filter((r) => r['recipient_account'] === toHex(aliceKey));
    // The laptop's copy and the phone's own echo, both sealed under the self token, with Bob's envelope.
    expect(toAlice.map((r) => Number(r['recipient_device'])).sort()).toEqual([1, 2]);
    for (const r of sent) expect(r['sender_device'], JSON.stringify(r)).toBe('0');
    expect(sent.some((r) => r['sender_account'] === toHex(aliceKey))).toBe(false);
    // Accepted together: one server time for Bob's envelope and the copies.
    expect(new Set(sent.filter((r) => r['client_id'] === toAlice[0]?.['client_id']).map((r) => r['server_ts'])).size).toBe(1);
    const named = identifiersOf(relay.dbPath, [aliceKey, bobKey]);
    expect(sealedRowsNaming(relay.dbPath, [...new Set(sent.map((r) => r['sender_account'] as string))], named)).toEqual([]);
    for (const line of relay.logs.slice(logsFrom))
      for (const v of identifiersOf(relay.dbPath, [aliceKey])) expect(mentions(line, v), line).toBe(false);
    // The echo is dropped unread, not refused; the laptop refused nothing.
    expect(echoes).toEqual([]);
    expect(laptopFailures).toEqual([]);
  }, 60_000);

  it('a group message goes as one sealed group send that includes our other device', async () => {
    const { phone, laptop, bob, aliceKey } = scene;
    const joined = record(bob, 'group-change');
    const group = await phone.createGroup('pair', [bob.accountId]);
    await until(() => joined.length > 0, 15_000, 'Bob joined');
    await phone.flush();
    const mark = rows(relay.dbPath, 'audit_messages').length;
    await phone.sendText(group, 'to the group, sealed');
    await until(() => got(bob, `<${group}:to the group, sealed`), 15_000, 'Bob reads the group text');
    await until(() => got(laptop, `>${group}:to the group, sealed`), 15_000, 'the laptop reads it');
    const sent = rows(relay.dbPath, 'audit_messages')
      .slice(mark)
      .filter((r) => r['payload_id'] !== 'null');
    // Bob, the laptop and the phone's echo: three seals of one payload, no sender named.
    expect(sent).toHaveLength(3);
    expect(new Set(sent.map((r) => r['payload_id'])).size).toBe(1);
    for (const r of sent) expect(r['sender_device']).toBe('0');
    expect(sent.filter((r) => r['recipient_account'] === toHex(aliceKey))).toHaveLength(2);
  }, 30_000);

  it('interoperates with a client that has sealed sending off, in a group and one to one, both ways', async () => {
    const { phone, laptop, bob, olga } = scene;
    await phone.addContact(olga.accountId, 'olga');
    await olga.addContact(phone.accountId, 'alice');
    await phone.maintain();
    await olga.maintain();
    const joined = record(olga, 'group-change');
    const group = await phone.createGroup('mixed', [bob.accountId, olga.accountId]);
    await until(() => joined.length > 0, 15_000, 'Olga joined');
    await phone.sendText(group, 'hello mixed group');
    await until(() => got(olga, `<${group}:hello mixed group`) && got(bob, `<${group}:hello mixed group`), 15_000, 'both read it');
    await olga.sendText(group, 'from the old client');
    await until(
      () =>
        got(phone, `<${group}:from the old client`) &&
        got(bob, `<${group}:from the old client`) &&
        got(laptop, `<${group}:from the old client`),
      15_000,
      'everyone reads Olga',
    );
    await bob.sendText(group, 'from Bob');
    await until(() => got(olga, `<${group}:from Bob`) && got(phone, `<${group}:from Bob`), 15_000, 'Bob reaches both');
    await phone.sendText(olga.accountId, 'one to one, to Olga');
    await until(() => got(olga, `<${phone.accountId}:one to one, to Olga`), 15_000, 'to Olga');
    await olga.sendText(phone.accountId, 'one to one, from Olga');
    await until(() => got(phone, `<${olga.accountId}:one to one, from Olga`), 15_000, 'from Olga');
    // Olga granted nothing: Alice holds no token for her, so what goes to her is identified.
    expect(getHeld(scene.phoneStore, parseAccountId(olga.accountId), Date.now())).toBeNull();
  }, 60_000);

  it('a wrong wrap or payload under a genuine seal is refused with SEAL_FAILED, group and session state unchanged', async () => {
    const { phone, phoneStore, bob, bobStore, url } = scene;
    await phone.flush();
    await bob.flush();
    // Alice's own device key seals genuinely (as a buggy or hostile Alice client would): only the content is wrong.
    const alice = loadIdentity(phoneStore, defaultProvider())?.device as DeviceIdentity;
    const bobDevice = loadIdentity(bobStore, defaultProvider())?.device as DeviceIdentity;
    const bobKey = parseAccountId(bob.accountId);
    const token = getHeld(phoneStore, bobKey, Date.now())?.token as Uint8Array;
    const tokenHash = seal.deliveryTokenHash(bobKey, token);
    const sealToBob = (message: Uint8Array) =>
      seal.sealToContact({
        recipientIdentityKey: bobDevice.certificate.identityKey,
        recipientCertificateHash: certificateHash(bobDevice.certificate),
        senderIdentityPrivateKey: alice.identityKeyPair.privateKey,
        senderDeviceId: alice.deviceId,
        tokenHash,
        frankingTag: null,
        message,
      });
    const post = (id: string, envelope: Uint8Array, payload?: Uint8Array) =>
      fetch(`${url}/v2/sealed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          ...(payload ? { payload: toBase64Url(payload) } : {}),
          messages: [{ account: bob.accountId, deviceId: 1, id, token: toBase64Url(token), envelope: toBase64Url(envelope) }],
        }),
      });
    const failures = record(bob, 'undecryptable');
    const snapshot = () =>
      JSON.stringify((['groups', 'sessions'] as const).map((t) => bobStore.list(t).map((e) => [e.key, toHex(e.value)])));
    const before = snapshot();
    const real = seal.sealGroupPayload(new Uint8Array([0x85, 1, 3, 0, 0, 0, 0]));
    const notGroup = seal.sealGroupPayload(new TextEncoder().encode('a payload that is no group message'));
    const cases: [string, Uint8Array, Uint8Array | undefined][] = [
      // A seal of something that is not a key wrap, sent as a group send.
      ['no-wrap', sealToBob(new Uint8Array(40).fill(1)), real.payload],
      // A key wrap in a plain seal: no payload to open.
      ['wrap-alone', sealToBob(real.wrap), undefined],
      // A wrap naming another payload than the one stored.
      ['other-payload', sealToBob(real.wrap), notGroup.payload],
      // A payload that opens but holds no group message.
      ['not-a-group-message', sealToBob(notGroup.wrap), notGroup.payload],
    ];
    for (const [id, envelope, payload] of cases) expect((await post(id, envelope, payload)).status).toBe(200);
    await until(() => cases.every(([id]) => failures.some((f) => f.clientId === id)), 15_000, 'every forgery refused');
    for (const [id] of cases) expect(failures.find((f) => f.clientId === id)?.code, id).toBe('SEAL_FAILED');
    expect(snapshot()).toBe(before);
    // Still talking afterwards.
    await phone.sendText(bob.accountId, 'after the forgeries');
    await until(() => got(bob, `<${phone.accountId}:after the forgeries`), 15_000, 'after the forgeries');
  }, 30_000);

  it('after a device is linked, own copies go identified until upkeep announces a new self token to every device', async () => {
    const { phone, bob, aliceKey } = scene;
    const tabletStore = new MemoryStore();
    const response = await phone.approveLink(ParleyClient.requestLink({ store: tabletStore }));
    const tablet = track(
      await ParleyClient.completeLink(
        { store: tabletStore, relay: connectRelayNode(scene.url), options: { ...TEST_OPTIONS, sealedSender: true } },
        response,
      ),
    );
    const tabletFailures = record(tablet, 'undecryptable');
    await tablet.start();
    await phone.flush();
    expect((await phone.devices()).length).toBe(3);
    let mark = rows(relay.dbPath, 'audit_messages').length;
    await phone.sendText(bob.accountId, 'with a new device');
    await until(() => got(tablet, `>${bob.accountId}:with a new device`), 15_000, 'the tablet reads the transcript');
    // The phone's self token was announced to two devices, not three: its copies went identified (or under a
    // token the tablet itself announced meanwhile), and the tablet lost nothing.
    const copies = rows(relay.dbPath, 'audit_messages')
      .slice(mark)
      .filter((r) => r['recipient_account'] === toHex(aliceKey));
    expect(copies.length).toBeGreaterThan(0);
    expect(tabletFailures).toEqual([]);

    // Upkeep sees the changed device set and grants again; once the announcement is with the relay, copies are sealed.
    await phone.maintain();
    await phone.flush();
    await tablet.flush();
    await new Promise((r) => setTimeout(r, 300));
    mark = rows(relay.dbPath, 'audit_messages').length;
    await phone.sendText(bob.accountId, 'sealed to three devices');
    await until(() => got(tablet, `>${bob.accountId}:sealed to three devices`), 15_000, 'the tablet reads the sealed copy');
    const sealedCopies = rows(relay.dbPath, 'audit_messages')
      .slice(mark)
      .filter((r) => r['recipient_account'] === toHex(aliceKey));
    expect(sealedCopies.map((r) => Number(r['recipient_device'])).sort()).toEqual([1, 2, 3]);
    expect(sealedCopies.every((r) => r['sender_device'] === '0')).toBe(true);
    expect(tabletFailures).toEqual([]);
  }, 60_000);
});

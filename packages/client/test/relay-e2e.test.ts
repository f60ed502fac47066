// End to end through a real relay on a loopback port: two accounts register
// devices, Alice fetches Bob's bundles and starts core sessions, sends
// through the relay, Bob receives by websocket push, decrypts and replies,
// Alice decrypts the reply, both acknowledge. The relay's SQLite files
// never hold a plaintext byte. spec/09-relay.md.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Account, type DeviceIdentity, PreKeyStore, SessionRecord, fromUtf8, utf8 } from '@parley/core';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type MailboxReceiver,
  type ReceivedEnvelope,
  RelayClient,
  deviceSigner,
  isRelayError,
  mismatchesOf,
  preKeysOf,
} from '../src/relay-client/index.ts';
import { loopbackRelay } from './support/loopback-relay.ts';

interface Person {
  account: Account;
  device: DeviceIdentity;
  prekeys: PreKeyStore;
  relay: RelayClient;
  inbox: ReceivedEnvelope[];
  receiver?: MailboxReceiver;
}

// Default storage: SQLite in a file under the data folder, as `npm start` runs it.
const server = loopbackRelay('e2e', { scope: 'all' });

function person(account: Account, deviceId: number): Person {
  const device = account.createDevice(deviceId);
  return {
    account,
    device,
    prekeys: PreKeyStore.generate(device, { oneTimePreKeys: 4, kemPreKeys: 2 }),
    relay: new RelayClient({ baseUrl: server.url, signer: deviceSigner(device), WebSocket: WebSocket as never }),
    inbox: [],
  };
}

/** Every byte the relay has on disk: the database, its WAL, and attachment files. */
function relayDiskBytes(): Buffer {
  const files: Buffer[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.push(readFileSync(path));
    }
  };
  walk(server.dataDir);
  return Buffer.concat(files);
}

async function eventually(predicate: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('two people talk through the relay', () => {
  it('bundle, session, send, push, decrypt, reply, acknowledge; no plaintext at rest', async () => {
    const alice = person(Account.generate(), 1);
    const bobAccount = Account.generate();
    const bobPhone = person(bobAccount, 1);
    const bobLaptop = person(bobAccount, 2);
    for (const p of [alice, bobPhone, bobLaptop]) {
      expect((await p.relay.registerDevice(p.device.certificate, preKeysOf(p.prekeys))).status).toBe('created');
    }

    // Alice learns Bob's devices from his bundles (each verified against his account key).
    const bundles = await alice.relay.fetchBundles(bobAccount.publicKey, '*');
    expect(bundles.map((b) => b.deviceId)).toEqual([1, 2]);
    const sessions = new Map(
      bundles.map((b) => [b.deviceId, SessionRecord.initiate(alice.device, b.bundle, { expectedAccountKey: bobAccount.publicKey })]),
    );

    // Sending to only one of Bob's devices is refused: the relay names the one left out.
    const hello = 'hello Bob, this is Alice';
    const toPhoneOnly = [
      { accountKey: bobAccount.publicKey, deviceId: 1, id: 'msg-1', envelope: sessions.get(1)?.encrypt(utf8(hello)) as Uint8Array },
    ];
    const refused = await alice.relay.send(toPhoneOnly).catch((e) => e);
    expect(isRelayError(refused, 'MISMATCHED_DEVICES')).toBe(true);
    expect(mismatchesOf(refused).map((m) => m.missingDevices)).toEqual([[2]]);

    const fanOut = bundles.map((b) => ({
      accountKey: bobAccount.publicKey,
      deviceId: b.deviceId,
      id: 'msg-1',
      envelope: b.deviceId === 1 ? (toPhoneOnly[0]?.envelope as Uint8Array) : (sessions.get(2)?.encrypt(utf8(hello)) as Uint8Array),
      certificateHash: b.certificateHash,
    }));
    expect(await alice.relay.send(fanOut)).toEqual({ accepted: 2 });

    // At rest the relay holds ciphertext only.
    expect(relayDiskBytes().includes(Buffer.from(hello))).toBe(false);

    // Bob's phone receives by websocket push and decrypts.
    const bobSessions = new Map<string, SessionRecord>();
    const plaintexts: string[] = [];
    let drained = false;
    bobPhone.receiver = bobPhone.relay
      .connect({
        onEnvelope: (e) => {
          const record = new SessionRecord();
          const result = record.decrypt(e.envelope, {
            device: bobPhone.device,
            prekeys: bobPhone.prekeys,
            expectedAccountKey: alice.account.publicKey,
          });
          // The relay-authenticated sender matches the sender inside the message.
          expect(result.sender.accountKey).toEqual(e.sender.accountKey);
          expect(result.sender.deviceId).toBe(e.sender.deviceId);
          bobSessions.set('alice:1', record);
          plaintexts.push(fromUtf8(result.plaintext));
        },
        onDrained: () => {
          drained = true;
        },
      })
      .start();
    await eventually(() => drained);
    expect(plaintexts).toEqual([hello]);

    // Bob's laptop uses the HTTP path.
    const laptopInbox = await bobLaptop.relay.fetchMessages();
    const laptopResult = new SessionRecord().decrypt(laptopInbox.messages[0]?.envelope as Uint8Array, {
      device: bobLaptop.device,
      prekeys: bobLaptop.prekeys,
    });
    expect(fromUtf8(laptopResult.plaintext)).toBe(hello);
    await bobLaptop.relay.ack(laptopInbox.messages.map((m) => m.seq));

    // Alice listens; Bob replies (to Alice's only device; his laptop gets a copy for sync).
    const replies: string[] = [];
    alice.receiver = alice.relay
      .connect({
        onEnvelope: (e) => {
          replies.push(fromUtf8((sessions.get(e.sender.deviceId) as SessionRecord).decrypt(e.envelope).plaintext));
        },
      })
      .start();
    await alice.receiver.whenOpen();
    const reply = 'hi Alice, got it';
    const bobToAlice = bobSessions.get('alice:1') as SessionRecord;
    await bobPhone.relay.send([
      { accountKey: alice.account.publicKey, deviceId: 1, id: 'reply-1', envelope: bobToAlice.encrypt(utf8(reply)) },
      {
        accountKey: bobAccount.publicKey,
        deviceId: 2,
        id: 'reply-1',
        envelope: utf8('sync copy, encrypted to the laptop in a real client'),
      },
    ]);
    await eventually(() => replies.length === 1);
    expect(replies).toEqual([reply]);

    // Everything acknowledged: Alice's and Bob's phone mailboxes are empty.
    const empty = async (p: Person) => (await p.relay.fetchMessages()).messages.length === 0;
    for (let i = 0; i < 100 && !((await empty(alice)) && (await empty(bobPhone))); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await empty(alice)).toBe(true);
    expect(await empty(bobPhone)).toBe(true);

    alice.receiver.stop();
    bobPhone.receiver.stop();
    expect(relayDiskBytes().includes(Buffer.from(hello))).toBe(false);
    expect(relayDiskBytes().includes(Buffer.from(reply))).toBe(false);
  });
});

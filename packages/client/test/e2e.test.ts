/**
 * End to end, against the real relay on loopback (spec/10-client.md §10):
 * three accounts, one with two devices; one-to-one and group conversations;
 * a device added and one removed mid-conversation; a relay restart in the
 * middle; an attachment of several megabytes; a forced desync that heals;
 * a ghost device written straight into the relay's database that clients
 * refuse. At the end: nothing lost, nothing duplicated, and no plaintext in
 * the relay's database.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningRelay, startServer, withDefaults } from '@parley/relay';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Account, encodeCertificate } from '@parley/core';
import { ParleyClient } from '../src/client.ts';
import { deviceKey, parseAccountId } from '../src/state/ids.ts';
import { connectRelayNode } from '../src/node.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { TEST_OPTIONS, record, until } from './support/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
const relayDir = join(dir, 'relay');
const running: { relay: RunningRelay | null } = { relay: null };
const clients: ParleyClient[] = [];
const stores: SqliteStore[] = [];

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const s of stores) s.close();
  await running.relay?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startRelay(port = 0): Promise<string> {
  running.relay = await startServer(
    withDefaults({ host: '127.0.0.1', port, dataDir: relayDir, logLevel: 'silent', sweepIntervalSeconds: 3600 }),
  );
  return running.relay.url;
}

function openStore(name: string): SqliteStore {
  const store = new SqliteStore(join(dir, `${name}.sqlite`));
  stores.push(store);
  return store;
}

const texts = (c: ParleyClient, conversation: string) =>
  c.history(conversation).map((h) => {
    const b = h.content.body;
    return `${h.outgoing ? '>' : '<'}${b.type === 'text' ? b.text : b.type === 'attachment' ? `[file ${b.attachment.fileName}]` : '?'}`;
  });

const T0 = Date.now();
const trace = (what: string) => {
  if (process.env.PARLEY_E2E_TRACE) console.log(`${Date.now() - T0} ms: ${what}`);
};
async function waitFor(c: ParleyClient, conversation: string, entry: string, what = entry): Promise<void> {
  await until(() => texts(c, conversation).includes(entry), 20_000, what);
  if (process.env.PARLEY_E2E_TRACE) console.log(`${Date.now() - T0} ms: ${what}`);
}

/** Every canary string sent in this test: none may appear in the relay's files. */
const canaries: string[] = [];
const say = (text: string) => {
  canaries.push(text);
  return text;
};

describe('Parley end to end on a real relay', () => {
  it('three accounts, two devices, groups, a restart, a big file, a desync and a ghost: nothing lost, nothing duplicated', async () => {
    const url = await startRelay();
    const port = Number(new URL(url).port);
    const connector = connectRelayNode(url);
    const create = async (name: string) => {
      const c = await ParleyClient.createAccount({ store: openStore(name), relay: connector, options: TEST_OPTIONS });
      clients.push(c);
      await c.start();
      return c;
    };
    const alice = await create('alice');
    const bob = await create('bob');
    const carol = await create('carol');
    const warnings = [alice, bob, carol].map((c) => record(c, 'warning'));
    if (process.env.PARLEY_E2E_TRACE) {
      for (const [n, c] of [
        ['alice', alice],
        ['bob', bob],
        ['carol', carol],
      ] as const) {
        for (const ev of ['warning', 'undecryptable', 'untrusted-device', 'connection'] as const)
          c.on(ev, (e) => console.log(n, ev, JSON.stringify(e)));
      }
    }

    // ---- one-to-one
    await alice.addContact(bob.accountId, 'bob');
    await bob.addContact(alice.accountId, 'alice');
    await alice.sendText(bob.accountId, say('hello Bob, canary-1:1-a'));
    await waitFor(bob, alice.accountId, '<hello Bob, canary-1:1-a');
    await bob.sendText(alice.accountId, say('hi Alice, canary-1:1-b'));
    await waitFor(alice, bob.accountId, '<hi Alice, canary-1:1-b');

    // ---- a device added mid-conversation
    const laptopStore = openStore('alice-laptop');
    const response = await alice.approveLink(ParleyClient.requestLink({ store: laptopStore }));
    const laptop = await ParleyClient.completeLink({ store: laptopStore, relay: connector, options: TEST_OPTIONS }, response);
    clients.push(laptop);
    await laptop.start();
    expect(laptop.accountId).toBe(alice.accountId);
    await alice.flush();
    await bob.sendText(alice.accountId, say('to both of your devices, canary-fanout'));
    await waitFor(laptop, bob.accountId, '<to both of your devices, canary-fanout', 'laptop gets the fan-out');
    await waitFor(alice, bob.accountId, '<to both of your devices, canary-fanout', 'phone gets the fan-out');
    await laptop.sendText(bob.accountId, say('typed on the laptop, canary-laptop'));
    await waitFor(bob, alice.accountId, '<typed on the laptop, canary-laptop');
    await waitFor(alice, bob.accountId, '>typed on the laptop, canary-laptop', 'phone gets the sync transcript');

    // ---- a group with all three accounts (four devices)
    const group = await carol.createGroup('trio', [alice.accountId, bob.accountId]);
    await until(
      () => alice.group(group) !== null && bob.group(group) !== null && laptop.group(group) !== null,
      20_000,
      'group known everywhere',
    );
    await carol.sendText(group, say('group hello, canary-group-1'));
    for (const c of [alice, laptop, bob]) await waitFor(c, group, '<group hello, canary-group-1');
    await bob.sendText(group, say('group reply, canary-group-2'));
    for (const c of [alice, laptop, carol]) await waitFor(c, group, '<group reply, canary-group-2');

    // ---- a relay restart in the middle: sends made while it is down wait in the outbox
    await running.relay?.close();
    running.relay = null;
    trace('relay closed');
    await expect(bob.sendText(carol.accountId, say('sent while the relay was down, canary-restart-1'))).rejects.toMatchObject({
      code: 'RELAY_UNAVAILABLE',
    });
    await expect(alice.sendText(group, say('group while down, canary-restart-2'))).rejects.toMatchObject({ code: 'RELAY_UNAVAILABLE' });
    trace('sends refused');
    await startRelay(port);
    trace('relay restarted');
    await waitFor(
      carol,
      bob.accountId,
      '<sent while the relay was down, canary-restart-1',
      'carol gets the message queued during the restart',
    );
    for (const c of [laptop, bob, carol])
      await waitFor(c, group, c === laptop ? '>group while down, canary-restart-2' : '<group while down, canary-restart-2');

    // ---- an attachment of several megabytes, streamed both ways
    const size = 5 * 1024 * 1024 + 12_345;
    const file = new Uint8Array(size);
    for (let i = 0; i < size; i++) file[i] = (i * 2654435761) >>> 24;
    const marker = say('canary-inside-the-video');
    file.set(new TextEncoder().encode(marker), 1_000_000);
    await alice.sendFile(bob.accountId, { stream: new Blob([file]).stream(), size, fileName: 'holiday.mp4', contentType: 'video/mp4' });
    await waitFor(bob, alice.accountId, '<[file holiday.mp4]');
    const got = bob.history(alice.accountId).find((h) => h.content.body.type === 'attachment');
    if (got?.content.body.type !== 'attachment') throw new Error('no attachment');
    expect(got.content.body.attachment.size).toBe(size);
    const hash = createHash('sha256');
    let received = 0;
    const reader = bob.openAttachment(got.content.body.attachment).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      received += value.length;
    }
    expect(received).toBe(size);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(file).digest('hex'));

    // ---- a forced desync that heals: Carol loses her session with Bob
    const bobKey = deviceKey({ accountKey: parseAccountId(bob.accountId), deviceId: 1 });
    stores[2]?.delete('sessions', bobKey);
    const undecryptable = record(carol, 'undecryptable');
    await bob.sendText(carol.accountId, say('after the desync, canary-heal'));
    await waitFor(carol, bob.accountId, '<after the desync, canary-heal', 'the healed message');
    expect(undecryptable.map((u) => u.retryRequested)).toEqual([true]);
    await carol.sendText(bob.accountId, say('and back, canary-heal-2'));
    await waitFor(bob, carol.accountId, '<and back, canary-heal-2');

    // ---- a device removed mid-conversation
    const laptopCertificate = new Database(join(relayDir, 'relay.sqlite'), { readonly: true })
      .prepare('SELECT * FROM devices WHERE device_id = 2')
      .get() as Record<string, unknown>;
    await alice.removeDevice(2);
    await alice.flush();
    await bob.sendText(alice.accountId, say('after the laptop left, canary-removed'));
    await waitFor(alice, bob.accountId, '<after the laptop left, canary-removed');
    await carol.sendText(group, say('group after the laptop left, canary-removed-group'));
    await waitFor(alice, group, '<group after the laptop left, canary-removed-group');
    await waitFor(bob, group, '<group after the laptop left, canary-removed-group');

    // ---- a ghost: the removed laptop's row written straight back into the relay's database
    const db = new Database(join(relayDir, 'relay.sqlite'));
    const columns = Object.keys(laptopCertificate);
    db.prepare(`INSERT INTO devices (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(
      ...columns.map((c) => laptopCertificate[c]),
    );
    const refused = record(bob, 'untrusted-device');
    await expect(bob.sendText(alice.accountId, say('not for the ghost, canary-ghost'))).rejects.toMatchObject({ code: 'UNTRUSTED_DEVICE' });
    expect(refused).toEqual([{ account: alice.accountId, deviceId: 2, reason: 'not-in-device-list' }]);
    const ghostMail = db.prepare('SELECT COUNT(*) AS n FROM messages WHERE recipient_device = 2').get() as { n: number };
    expect(ghostMail.n).toBe(0);
    // A second ghost whose certificate the account never signed (Mallory's signature under Alice's name).
    const forged = Account.generate().createDevice(7).certificate;
    const forgedBytes = encodeCertificate({ ...forged, accountKey: parseAccountId(alice.accountId) });
    db.prepare(`INSERT INTO devices (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(
      ...columns.map((c) => (c === 'device_id' ? 7 : c === 'certificate' ? Buffer.from(forgedBytes) : laptopCertificate[c])),
    );
    const forgedRefused = record(carol, 'untrusted-device');
    await expect(carol.sendText(alice.accountId, say('not for the forged ghost, canary-ghost-2'))).rejects.toMatchObject({
      code: 'UNTRUSTED_DEVICE',
    });
    expect(forgedRefused).toContainEqual({ account: alice.accountId, deviceId: 7, reason: 'bad-certificate' });
    // The ghosts leave; the waiting messages go out to the real devices.
    db.prepare('DELETE FROM devices WHERE device_id IN (2, 7)').run();
    const ghostMail7 = db.prepare('SELECT COUNT(*) AS n FROM messages WHERE recipient_device = 7').get() as { n: number };
    expect(ghostMail7.n).toBe(0);
    db.close();
    await waitFor(alice, bob.accountId, '<not for the ghost, canary-ghost', 'the message held back by the ghost');
    await waitFor(alice, carol.accountId, '<not for the forged ghost, canary-ghost-2', 'the message held back by the forged ghost');

    // ---- nothing lost, nothing duplicated
    for (const c of [alice, bob, carol, laptop]) await c.flush();
    expect(texts(alice, bob.accountId)).toEqual([
      '>hello Bob, canary-1:1-a',
      '<hi Alice, canary-1:1-b',
      '<to both of your devices, canary-fanout',
      '>typed on the laptop, canary-laptop',
      '>[file holiday.mp4]',
      '<after the laptop left, canary-removed',
      '<not for the ghost, canary-ghost',
    ]);
    expect(texts(bob, alice.accountId)).toEqual([
      '<hello Bob, canary-1:1-a',
      '>hi Alice, canary-1:1-b',
      '>to both of your devices, canary-fanout',
      '<typed on the laptop, canary-laptop',
      '<[file holiday.mp4]',
      '>after the laptop left, canary-removed',
      '>not for the ghost, canary-ghost',
    ]);
    expect(texts(laptop, bob.accountId)).toEqual([
      '<to both of your devices, canary-fanout',
      '>typed on the laptop, canary-laptop',
      '>[file holiday.mp4]',
    ]);
    expect(texts(carol, bob.accountId)).toEqual([
      '<sent while the relay was down, canary-restart-1',
      '<after the desync, canary-heal',
      '>and back, canary-heal-2',
    ]);
    const groupLog = [
      'group hello, canary-group-1',
      'group reply, canary-group-2',
      'group while down, canary-restart-2',
      'group after the laptop left, canary-removed-group',
    ];
    const from = { [carol.accountId]: [0, 3], [bob.accountId]: [1], [alice.accountId]: [2] };
    for (const c of [alice, bob, carol]) {
      const mine = from[c.accountId] ?? [];
      expect(texts(c, group)).toEqual(groupLog.map((t, i) => `${mine.includes(i) ? '>' : '<'}${t}`));
    }
    expect(texts(laptop, group)).toEqual([
      '<group hello, canary-group-1',
      '<group reply, canary-group-2',
      '>group while down, canary-restart-2',
    ]);

    // ---- the relay's files never held plaintext
    await (running.relay as RunningRelay | null)?.close();
    running.relay = null;
    const files = readdirSync(relayDir, { recursive: true })
      .map((f) => join(relayDir, String(f)))
      .filter((f) => statSync(f).isFile());
    expect(files.some((f) => f.endsWith('relay.sqlite'))).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const canary of canaries) expect(bytes.includes(canary), `${canary} in ${f}`).toBe(false);
    }
    for (const w of warnings) expect(w.filter((x) => x.code === 'INTERNAL')).toEqual([]);
  });
});

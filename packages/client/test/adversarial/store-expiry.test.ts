/**
 * Finding 4 of issue 11: once a disappearing message's timer runs out,
 * nothing of it survives on either device (spec/10-client.md §7.4).
 *
 * Two clients on SQLite files exchange a text and an attachment, each
 * carrying a unique marker, under a one-minute timer. The clock moves past
 * the timer, both run upkeep, and every byte of every file each device
 * keeps (the database, its -wal and -shm files, the downloads folder) is
 * searched for the marker and for the attachment key. The stores stay open
 * while they are searched: that is what a thief copying the disk finds.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ParleyClient } from '../../src/client.ts';
import { decodeAttachmentPointer } from '../../src/attachments/index.ts';
import { DownloadFolder } from '../../src/store/download-folder.ts';
import { decodeContent } from '../../src/content/content.ts';
import { fromBase64Url, messageIdText } from '../../src/state/ids.ts';
import { getSent } from '../../src/state/sent-log.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { TABLES } from '../../src/store/types.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { closedAfterEach, TEST_OPTIONS, until } from '../support/harness.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every file under `dir`, recursively, with its bytes (a file's name counts too). */
function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push({ path, bytes: readFileSync(path) });
  }
  return out;
}

/** Where `needle` occurs: in a file's bytes or in its path. */
function findIn(dir: string, needle: Uint8Array): string[] {
  return filesUnder(dir)
    .filter((f) => f.bytes.indexOf(needle) >= 0 || f.path.includes(Buffer.from(needle).toString('latin1')))
    .map((f) => f.path.slice(dir.length + 1));
}

describe('store: an expired message leaves nothing on disk', () => {
  const track = closedAfterEach();

  async function device(relay: FakeRelay, clock: { now: number }) {
    const dir = mkdtempSync(join(tmpdir(), 'parley-expiry-'));
    dirs.push(dir);
    const store = new SqliteStore(join(dir, 'client.sqlite'), { clock: () => clock.now });
    const downloads = join(dir, 'downloads');
    const client = await ParleyClient.createAccount({
      store,
      relay: relay.connector,
      clock: () => clock.now,
      options: TEST_OPTIONS,
      files: new DownloadFolder(downloads),
    });
    track(client);
    await client.start();
    return { dir, store, client };
  }

  /** Alice and Bob on one fake relay and one clock; with `timerSeconds`, Alice sets that timer and Bob has applied it. */
  async function pair(timerSeconds?: number) {
    const relay = new FakeRelay();
    const clock = { now: Date.now() };
    const alice = await device(relay, clock);
    const bob = await device(relay, clock);
    if (timerSeconds !== undefined) {
      await alice.client.setExpireTimer(bob.client.accountId, timerSeconds);
      await until(() => bob.client.expireTimer(alice.client.accountId) === timerSeconds);
    }
    return { relay, clock, alice, bob };
  }

  it('sweeps history, sent log, outbox, attachment keys, downloaded files, free pages and the WAL on both devices', async () => {
    const { relay, clock, alice, bob } = await pair(60);

    const marker = `MARKER-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    await alice.client.sendText(bob.client.accountId, `the secret is ${marker}`);
    const file = new TextEncoder().encode(`attachment body ${marker} `.repeat(50));
    await alice.client.sendFile(bob.client.accountId, {
      stream: new Blob([file]).stream(),
      size: file.length,
      fileName: `${marker}.txt`,
      contentType: 'text/plain',
      caption: `caption ${marker}`,
    });
    await until(() => bob.client.history(alice.client.accountId).length === 2, 10_000, 'both messages at Bob');
    const received = bob.client.history(alice.client.accountId).find((m) => m.content.body.type === 'attachment');
    if (received?.content.body.type !== 'attachment') throw new Error('expected the attachment');
    const key = decodeAttachmentPointer(received.content.body.attachment.pointer).key;
    const saved = await bob.client.saveAttachment(alice.client.accountId, messageIdText(received.content.messageId));
    expect(readFileSync(saved)).toEqual(Buffer.from(file));

    const needle = new TextEncoder().encode(marker);
    // The scan finds the marker before expiry (so the search itself works).
    expect(findIn(alice.dir, needle).length).toBeGreaterThan(0);
    expect(findIn(bob.dir, needle).length).toBeGreaterThan(0);
    expect(findIn(bob.dir, key).length).toBeGreaterThan(0);

    clock.now += 61_000;
    await alice.client.maintain();
    await bob.client.maintain();

    expect(bob.client.history(alice.client.accountId)).toEqual([]);
    expect(alice.client.history(bob.client.accountId)).toEqual([]);
    // Logically gone too (the sent log used to keep every text for its 7-day retry window).
    const holding = (store: SqliteStore) =>
      TABLES.flatMap((t) =>
        store
          .list(t)
          .filter((e) => Buffer.from(e.value).indexOf(needle) >= 0)
          .map((e) => `${t}/${e.key}`),
      );
    expect({ alice: holding(alice.store), bob: holding(bob.store) }).toEqual({ alice: [], bob: [] });
    const left = (d: typeof alice) => ({ marker: findIn(d.dir, needle), key: findIn(d.dir, key) });
    expect({ alice: left(alice), bob: left(bob) }).toEqual({ alice: { marker: [], key: [] }, bob: { marker: [], key: [] } });
  });

  it('drops a queued disappearing message whose timer runs out before the relay takes it', async () => {
    const { relay, clock, alice, bob } = await pair(60);

    await alice.client.flush();
    await bob.client.flush();
    const storedBefore = relay.stored.length;
    relay.setDown(true);
    const marker = `QUEUED-${Math.random().toString(36).slice(2)}`;
    const sending = alice.client.sendText(bob.client.accountId, marker).catch((e: Error) => e);
    await sending;
    expect(alice.store.list('outbox').length).toBeGreaterThan(0);

    clock.now += 61_000;
    relay.setDown(false);
    await alice.client.maintain();
    await alice.client.flush();
    expect(alice.store.list('outbox')).toEqual([]);
    // Nothing reached the relay for Bob, and nothing of it is left on Alice's disk.
    const needle = new TextEncoder().encode(marker);
    expect(relay.stored.length).toBe(storedBefore);
    expect(bob.client.history(alice.client.accountId)).toEqual([]);
    expect(findIn(alice.dir, needle)).toEqual([]);
  });

  it('keeps the download of a message without a timer, and refuses one whose message disappeared mid-download', async () => {
    const { relay, clock, alice, bob } = await pair();
    const file = new TextEncoder().encode('kept for good');
    await alice.client.sendFile(bob.client.accountId, { stream: new Blob([file]).stream(), size: file.length, fileName: 'keep.txt' });
    await until(() => bob.client.history(alice.client.accountId).length === 1);
    const kept = bob.client.history(alice.client.accountId)[0];
    const path = await bob.client.saveAttachment(alice.client.accountId, messageIdText(kept?.content.messageId as Uint8Array));
    expect(bob.store.list('downloads')).toEqual([]);
    clock.now += 400 * 24 * 3600 * 1000;
    await bob.client.maintain();
    expect(readFileSync(path)).toEqual(Buffer.from(file));

    // A disappearing one whose timer runs out while its bytes are still coming.
    await alice.client.setExpireTimer(bob.client.accountId, 5);
    await alice.client.sendFile(bob.client.accountId, { stream: new Blob([file]).stream(), size: file.length, fileName: 'brief.txt' });
    await until(() => bob.client.history(alice.client.accountId).length === 2);
    const brief = bob.client.history(alice.client.accountId).find((m) => m.expiresAt !== null);
    const originalOpen = bob.client.openAttachment.bind(bob.client);
    bob.client.openAttachment = (a) => {
      clock.now += 6_000; // the timer runs out during the download
      return originalOpen(a);
    };
    await expect(
      bob.client.saveAttachment(alice.client.accountId, messageIdText(brief?.content.messageId as Uint8Array)),
    ).rejects.toMatchObject({
      code: 'UNKNOWN_MESSAGE',
    });
    expect(readdirSync(join(bob.dir, 'downloads')).sort()).toEqual(['keep.txt']);
    expect(bob.store.list('downloads')).toEqual([]);
  });

  it('a group message leaves no text and no chain-key copy (distribution) behind once its timer ran out', async () => {
    const { relay, clock, alice, bob } = await pair();
    const group = await alice.client.createGroup('brief', [bob.client.accountId]);
    await until(() => bob.client.groups().length === 1, 10_000, 'the group at Bob');
    // A message before the timer: its distribution (our chain key) is logged with the 7-day retry window;
    // the timer set afterwards must shorten that copy too, since later messages use the same chain.
    await alice.client.sendText(group, 'before the timer');
    await until(() => bob.client.history(group).length === 1, 10_000, 'the first group message at Bob');
    await alice.client.setExpireTimer(group, 60);
    const marker = `GROUP-${Math.random().toString(36).slice(2)}`;
    await alice.client.sendText(group, marker);
    await until(() => bob.client.history(group).length === 2, 10_000, 'the group message at Bob');
    const distributions = (d: typeof alice) =>
      d.store.list('sent').filter((e) => {
        const entry = getSent(d.store, fromBase64Url(e.key, 16) as Uint8Array);
        const payload = entry?.toContacts ?? entry?.toOwnDevices;
        return payload ? decodeContent(payload).body.type === 'distribution' : false;
      });
    expect(distributions(alice).length).toBeGreaterThan(0);

    clock.now += 61_000;
    await alice.client.maintain();
    await bob.client.maintain();
    expect(distributions(alice)).toEqual([]);
    const needle = new TextEncoder().encode(marker);
    expect({ alice: findIn(alice.dir, needle), bob: findIn(bob.dir, needle) }).toEqual({ alice: [], bob: [] });
  });
});

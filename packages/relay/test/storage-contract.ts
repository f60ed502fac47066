// The contract every RelayStorage backend must pass (spec/09-relay.md §7).
// storage-sqlite.test.ts runs it against SQLite in memory and on disk; a
// PostgreSQL backend adds one more `describeStorageContract(...)` call.
//
// Storage is opaque to bytes, so the fixtures are arbitrary byte strings,
// not real certificates or keys.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceAddress, DeviceRecord, PreKeyUpload, RegisterInput, RelayStorage, StoreMessagesInput } from '../src/storage/types.ts';

export interface StorageFixture {
  readonly storage: RelayStorage;
  /** Closes and opens the same database again (omit for volatile backends). */
  readonly reopen?: () => Promise<RelayStorage>;
  readonly cleanup: () => Promise<void>;
}

const LIMITS = { maxOneTimePreKeys: 10, maxKemPreKeys: 4 };
const bytes = (tag: number, length = 32) => new Uint8Array(length).fill(tag);
let nextAccount = 1;
const newAccount = () => bytes(nextAccount++ & 0xff);

function device(accountKey: Uint8Array, deviceId: number, version = 1): DeviceRecord {
  return {
    accountKey,
    deviceId,
    certificate: Uint8Array.of(0xce, deviceId, version, ...accountKey.subarray(0, 4)),
    certificateHash: bytes(deviceId * 16 + version),
    signingKey: bytes(0x50 + deviceId),
    registeredAt: 1000,
  };
}

const key = (id: number, tag = 0) => ({ id, encoded: Uint8Array.of(0x4b, id & 0xff, tag) });

function registration(d: DeviceRecord, keys: PreKeyUpload = {}, maxDevicesPerAccount = 3): RegisterInput {
  return {
    device: d,
    keys: { signedPreKey: key(1, 1), lastResortKemPreKey: key(1, 2), ...keys },
    maxDevicesPerAccount,
    preKeyLimits: LIMITS,
  };
}

const ids = (start: number, n: number) => Array.from({ length: n }, (_, i) => key(start + i));

export function describeStorageContract(name: string, open: () => Promise<StorageFixture>, options: { durable: boolean }): void {
  describe(`RelayStorage contract: ${name}`, () => {
    let fx: StorageFixture;
    let s: RelayStorage;
    beforeEach(async () => {
      fx = await open();
      s = fx.storage;
    });
    afterEach(() => fx.cleanup());

    const msg = (sender: DeviceAddress, to: DeviceAddress[], id: string, extra: Partial<StoreMessagesInput> = {}): StoreMessagesInput => ({
      sender,
      envelopes: to.map((r) => ({ recipient: r, clientId: id, envelope: new TextEncoder().encode(`${id}->${r.deviceId}`) })),
      now: 1000,
      expiresAt: 100_000,
      maxQueuedMessages: 100,
      maxQueuedBytes: 1 << 20,
      ...extra,
    });

    describe('devices', () => {
      it('registers, re-registers unchanged, lists in id order, gets one', async () => {
        const a = newAccount();
        expect((await s.registerDevice(registration(device(a, 2)))).status).toBe('created');
        expect((await s.registerDevice(registration(device(a, 1)))).status).toBe('created');
        expect((await s.registerDevice(registration(device(a, 1)))).status).toBe('unchanged');
        expect((await s.listDevices(a)).map((d) => d.deviceId)).toEqual([1, 2]);
        const got = await s.getDevice({ accountKey: a, deviceId: 2 });
        expect(got).toMatchObject({ deviceId: 2, certificate: device(a, 2).certificate, signingKey: device(a, 2).signingKey });
        expect(await s.getDevice({ accountKey: a, deviceId: 3 })).toBeUndefined();
        expect(await s.listDevices(newAccount())).toEqual([]);
      });

      it('limits devices per account', async () => {
        const a = newAccount();
        for (const id of [1, 2, 3]) await s.registerDevice(registration(device(a, id)));
        expect(await s.registerDevice(registration(device(a, 4)))).toEqual({ status: 'too-many-devices', limit: 3 });
        // Replacing an existing device is not a new one.
        expect((await s.registerDevice(registration(device(a, 3, 2)))).status).toBe('replaced');
      });

      it('replacing a device drops its mailbox and prekeys and revokes the old certificate', async () => {
        const a = newAccount();
        const peer = newAccount();
        await s.registerDevice(registration(device(a, 1), { oneTimePreKeys: ids(1, 3) }));
        await s.registerDevice(registration(device(peer, 1)));
        await s.storeMessages(msg({ accountKey: peer, deviceId: 1 }, [{ accountKey: a, deviceId: 1 }], 'm'));
        expect((await s.registerDevice(registration(device(a, 1, 2)))).status).toBe('replaced');
        expect(await s.fetchMessages({ accountKey: a, deviceId: 1 }, 0, 10, 1000)).toEqual([]);
        expect((await s.preKeyCounts({ accountKey: a, deviceId: 1 }))?.oneTimePreKeys).toBe(0);
        expect(await s.registerDevice(registration(device(a, 1, 1)))).toEqual({ status: 'revoked' });
      });

      it('removes a device with its mailbox and prekeys, revoking its certificate', async () => {
        const a = newAccount();
        await s.registerDevice(registration(device(a, 1), { oneTimePreKeys: ids(1, 2) }));
        await s.registerDevice(registration(device(a, 2)));
        await s.storeMessages(msg({ accountKey: a, deviceId: 2 }, [{ accountKey: a, deviceId: 1 }], 'm'));
        const hash = device(a, 1).certificateHash;
        expect(await s.removeDevice({ accountKey: a, deviceId: 1 }, hash, 2000)).toBe('removed');
        // The same removal again: the certificate is already revoked, nothing changes.
        expect(await s.removeDevice({ accountKey: a, deviceId: 1 }, hash, 2000)).toBe('gone');
        expect(await s.getDevice({ accountKey: a, deviceId: 1 })).toBeUndefined();
        expect(await s.fetchMessages({ accountKey: a, deviceId: 1 }, 0, 10, 1000)).toEqual([]);
        expect(await s.registerDevice(registration(device(a, 1)))).toEqual({ status: 'revoked' });
        expect((await s.stats()).queuedMessages).toBe(0);
      });

      it('removes only the certificate it names: a replayed removal leaves a re-registered device alone', async () => {
        const a = newAccount();
        const first = { ...device(a, 6), certificateHash: bytes(0xa1) };
        const relinked = { ...device(a, 6, 2), certificateHash: bytes(0xa2) };
        await s.registerDevice(registration(first));
        expect(await s.removeDevice({ accountKey: a, deviceId: 6 }, first.certificateHash, 2000)).toBe('removed');
        expect((await s.registerDevice(registration(relinked))).status).toBe('created');
        expect(await s.removeDevice({ accountKey: a, deviceId: 6 }, first.certificateHash, 3000)).toBe('gone');
        expect((await s.getDevice({ accountKey: a, deviceId: 6 }))?.certificateHash).toEqual(relinked.certificateHash);
        expect(await s.removeDevice({ accountKey: a, deviceId: 6 }, bytes(0xa3), 3000)).toBe('not-found');
        expect(await s.removeDevice({ accountKey: a, deviceId: 7 }, bytes(0xa4), 3000)).toBe('not-found');
      });
    });

    describe('device lists', () => {
      const list = (revision: number, tag = 0) => ({ revision, encoded: Uint8Array.of(0x82, revision & 0xff, tag) });

      it('keeps the highest revision; the same bytes again change nothing', async () => {
        const a = newAccount();
        expect(await s.getDeviceList(a)).toBeUndefined();
        expect(await s.putDeviceList(a, list(1), 1000)).toEqual({ status: 'stored' });
        expect(await s.putDeviceList(a, list(3), 2000)).toEqual({ status: 'stored' });
        expect(await s.putDeviceList(a, list(3), 2500)).toEqual({ status: 'unchanged' });
        expect(await s.getDeviceList(a)).toEqual({ revision: 3, encoded: list(3).encoded, updatedAt: 2000 });
        expect(await s.getDeviceList(newAccount())).toBeUndefined();
      });

      it('refuses a lower revision and another list for the held revision', async () => {
        const a = newAccount();
        await s.putDeviceList(a, list(5), 1000);
        expect(await s.putDeviceList(a, list(4), 2000)).toEqual({ status: 'outdated', revision: 5 });
        expect(await s.putDeviceList(a, list(5, 9), 2000)).toEqual({ status: 'conflict', revision: 5 });
        expect((await s.getDeviceList(a))?.encoded).toEqual(list(5).encoded);
      });

      if (options.durable) {
        it('survives a reopen', async () => {
          const a = newAccount();
          await s.putDeviceList(a, list(2), 1000);
          if (!fx.reopen) throw new Error('a durable backend must support reopen');
          s = await fx.reopen();
          expect((await s.getDeviceList(a))?.revision).toBe(2);
        });
      }
    });

    describe('prekeys', () => {
      let a: Uint8Array;
      let addr: DeviceAddress;
      beforeEach(async () => {
        a = newAccount();
        addr = { accountKey: a, deviceId: 1 };
        await s.registerDevice(registration(device(a, 1), { oneTimePreKeys: ids(1, 3), kemPreKeys: ids(1, 2) }));
      });

      it('appends, ignores keys already held, and counts', async () => {
        const r = await s.uploadPreKeys(addr, { oneTimePreKeys: ids(2, 4), kemPreKeys: ids(2, 1) }, LIMITS);
        expect(r).toEqual({
          status: 'stored',
          ignored: 3,
          counts: { oneTimePreKeys: 5, kemPreKeys: 2, signedPreKeyId: 1, lastResortKemPreKeyId: 1 },
        });
      });

      it('replaces signed and last-resort keys unless older', async () => {
        await s.uploadPreKeys(addr, { signedPreKey: key(5), lastResortKemPreKey: key(7) }, LIMITS);
        const r = await s.uploadPreKeys(addr, { signedPreKey: key(4), lastResortKemPreKey: key(6) }, LIMITS);
        expect(r).toMatchObject({ ignored: 2, counts: { signedPreKeyId: 5, lastResortKemPreKeyId: 7 } });
        const [bundle] = await s.claimPreKeys({ accountKey: a, deviceId: 1 });
        expect(bundle?.signedPreKey).toEqual(key(5).encoded);
      });

      it('refuses an upload over the pool limit as a whole', async () => {
        const r = await s.uploadPreKeys(addr, { signedPreKey: key(9), oneTimePreKeys: ids(100, 8) }, LIMITS);
        expect(r).toEqual({ status: 'too-many-prekeys', kind: 'oneTime', limit: 10 });
        expect(await s.preKeyCounts(addr)).toMatchObject({ oneTimePreKeys: 3, signedPreKeyId: 1 });
      });

      it('unknown devices are not-found', async () => {
        expect(await s.uploadPreKeys({ accountKey: a, deviceId: 9 }, {}, LIMITS)).toEqual({ status: 'not-found' });
        expect(await s.preKeyCounts({ accountKey: a, deviceId: 9 })).toBeUndefined();
        expect(await s.claimPreKeys({ accountKey: a, deviceId: 9 })).toEqual([]);
        expect(await s.claimPreKeys({ accountKey: newAccount(), deviceId: 'all' })).toEqual([]);
      });

      it('claims the lowest one-time keys, once each, then falls back to the last-resort KEM key', async () => {
        const claimed = [];
        for (let i = 0; i < 4; i++) claimed.push((await s.claimPreKeys({ accountKey: a, deviceId: 1 }))[0]);
        expect(claimed.map((c) => c?.oneTimePreKey)).toEqual([key(1).encoded, key(2).encoded, key(3).encoded, null]);
        expect(claimed.map((c) => c?.kemLastResort)).toEqual([false, false, true, true]);
        expect(claimed[3]?.kemPreKey).toEqual(key(1, 2).encoded);
        expect(claimed[0]?.certificate).toEqual(device(a, 1).certificate);
      });

      it('never hands out an id twice, even when an upload carrying it is repeated', async () => {
        await s.claimPreKeys({ accountKey: a, deviceId: 1 });
        await s.claimPreKeys({ accountKey: a, deviceId: 1 });
        const r = await s.uploadPreKeys(addr, { oneTimePreKeys: ids(1, 5), kemPreKeys: ids(1, 3) }, LIMITS);
        expect(r).toMatchObject({ counts: { oneTimePreKeys: 3, kemPreKeys: 1 } });
        const next = (await s.claimPreKeys({ accountKey: a, deviceId: 1 }))[0];
        expect(next?.oneTimePreKey).toEqual(key(3).encoded);
        expect(next?.kemPreKey).toEqual(key(3).encoded);
      });

      it('concurrent claims never share a key', async () => {
        await s.uploadPreKeys(addr, { oneTimePreKeys: ids(4, 7) }, LIMITS);
        const results = await Promise.all(Array.from({ length: 25 }, () => s.claimPreKeys({ accountKey: a, deviceId: 1 })));
        const handed = results.map((r) => r[0]?.oneTimePreKey).filter((k) => k !== null && k !== undefined);
        expect(handed).toHaveLength(10);
        expect(new Set(handed.map((k) => k?.join())).size).toBe(10);
      });

      it("'all' covers every device but the excluded one; mayTakeOneTime=false keeps the keys", async () => {
        await s.registerDevice(registration(device(a, 2), { oneTimePreKeys: ids(1, 1) }));
        const all = await s.claimPreKeys({ accountKey: a, deviceId: 'all', exclude: { accountKey: a, deviceId: 2 } });
        expect(all.map((c) => c.deviceId)).toEqual([1]);
        const held = await s.claimPreKeys({ accountKey: a, deviceId: 'all', mayTakeOneTime: () => false });
        expect(held.map((c) => [c.deviceId, c.oneTimePreKey, c.kemLastResort])).toEqual([
          [1, null, true],
          [2, null, true],
        ]);
        expect((await s.preKeyCounts({ accountKey: a, deviceId: 2 }))?.oneTimePreKeys).toBe(1);
      });
    });

    describe('messages', () => {
      let alice: DeviceAddress;
      let alice2: DeviceAddress;
      let bob: DeviceAddress;
      let bob2: DeviceAddress;
      beforeEach(async () => {
        const a = newAccount();
        const b = newAccount();
        alice = { accountKey: a, deviceId: 1 };
        alice2 = { accountKey: a, deviceId: 2 };
        bob = { accountKey: b, deviceId: 1 };
        bob2 = { accountKey: b, deviceId: 2 };
        for (const d of [alice, alice2, bob, bob2]) await s.registerDevice(registration(device(d.accountKey, d.deviceId)));
      });

      it('stores one envelope per device, in per-device order, and fetches with paging', async () => {
        for (const id of ['m1', 'm2', 'm3']) {
          expect(await s.storeMessages(msg(alice, [bob, bob2, alice2], id))).toMatchObject({ status: 'stored', stored: 3, duplicates: 0 });
        }
        const all = await s.fetchMessages(bob, 0, 10, 1000);
        expect(all.map((m) => m.clientId)).toEqual(['m1', 'm2', 'm3']);
        expect(all[0]).toMatchObject({ sender: alice, serverTimestamp: 1000, expiresAt: 100_000 });
        expect(new TextDecoder().decode(all[0]?.envelope)).toBe('m1->1');
        const seqs = all.map((m) => m.seq);
        expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
        expect((await s.fetchMessages(bob, seqs[0] as number, 1, 1000)).map((m) => m.clientId)).toEqual(['m2']);
      });

      it('reports missing and extra devices and stores nothing', async () => {
        const ghost = { accountKey: newAccount(), deviceId: 1 };
        const r = await s.storeMessages(msg(alice, [bob, { ...bob, deviceId: 5 }, alice, ghost], 'm'));
        expect(r.status).toBe('mismatched-devices');
        if (r.status !== 'mismatched-devices') return;
        const byAccount = new Map(r.mismatches.map((m) => [m.accountKey.join(), m]));
        expect(byAccount.get(bob.accountKey.join())).toMatchObject({ missingDevices: [2], extraDevices: [5] });
        expect(byAccount.get(alice.accountKey.join())).toMatchObject({ missingDevices: [2], extraDevices: [1] });
        expect(byAccount.get(ghost.accountKey.join())).toMatchObject({ missingDevices: [], extraDevices: [1] });
        expect(await s.fetchMessages(bob, 0, 10, 1000)).toEqual([]);
      });

      it('reports stale devices when the certificate hash differs', async () => {
        const input = msg(alice, [bob, bob2, alice2], 'm');
        const envelopes = input.envelopes.map((e) => ({
          ...e,
          certificateHash: device(e.recipient.accountKey, e.recipient.deviceId).certificateHash,
        }));
        await s.registerDevice(registration(device(bob.accountKey, 2, 2)));
        const r = await s.storeMessages({ ...input, envelopes });
        expect(r).toMatchObject({ status: 'stale-devices', stale: [{ staleDevices: [2] }] });
      });

      it('is idempotent by (sender device, recipient device, client id), also after acknowledgement', async () => {
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'same'));
        expect(await s.storeMessages(msg(alice, [bob, bob2, alice2], 'same'))).toMatchObject({
          status: 'stored',
          stored: 0,
          duplicates: 3,
        });
        const [m] = await s.fetchMessages(bob, 0, 10, 1000);
        await s.ackMessages(bob, [m?.seq as number]);
        // A full retry passes even if the device list changed since.
        await s.registerDevice(registration(device(bob.accountKey, 3)));
        expect(await s.storeMessages(msg(alice, [bob, bob2, alice2], 'same'))).toMatchObject({ status: 'stored', stored: 0 });
        expect(await s.fetchMessages(bob, 0, 10, 1000)).toEqual([]);
        // Another sender device may use the same id.
        expect(await s.storeMessages(msg(alice2, [bob, bob2, { ...bob, deviceId: 3 }, alice], 'same'))).toMatchObject({ stored: 4 });
      });

      it('refuses a send that would overflow a mailbox (messages or bytes)', async () => {
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'a', { maxQueuedMessages: 1 }));
        const r = await s.storeMessages(msg(alice, [bob, bob2, alice2], 'b', { maxQueuedMessages: 1 }));
        expect(r).toMatchObject({ status: 'mailbox-full' });
        if (r.status === 'mailbox-full') expect(r.devices).toHaveLength(3);
        const bytesFull = await s.storeMessages(msg(alice, [bob, bob2, alice2], 'c', { maxQueuedBytes: 6 }));
        expect(bytesFull.status).toBe('mailbox-full');
        expect((await s.stats()).queuedMessages).toBe(3);
      });

      it("acknowledges only the recipient's own messages; seqs are never reused", async () => {
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'a'));
        const [m] = await s.fetchMessages(bob, 0, 10, 1000);
        const seq = m?.seq as number;
        expect(await s.ackMessages(bob2, [seq])).toBe(0);
        expect(await s.ackMessages(bob, [seq, seq + 999])).toBe(1);
        expect(await s.ackMessages(bob, [seq])).toBe(0);
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'b'));
        const [again] = await s.fetchMessages(bob, 0, 10, 1000);
        expect(again?.seq).toBeGreaterThan(seq);
      });

      it('hides expired messages and sweeps them with their idempotency records', async () => {
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'short', { expiresAt: 5000 }));
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'long', { expiresAt: 50_000 }));
        expect((await s.fetchMessages(bob, 0, 10, 6000)).map((m) => m.clientId)).toEqual(['long']);
        const swept = await s.sweep(6000);
        expect(swept).toMatchObject({ messages: 3, sentIds: 3 });
        expect((await s.stats()).queuedMessages).toBe(3);
        // The idempotency record is gone with the message: the id may be used again.
        expect(await s.storeMessages(msg(alice, [bob, bob2, alice2], 'short'))).toMatchObject({ stored: 3 });
      });

      it('tracks queued counts and bytes', async () => {
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'a'));
        const stats = await s.stats();
        expect(stats.queuedMessages).toBe(3);
        expect(stats.queuedBytes).toBe(3 * 'a->1'.length);
      });
    });

    describe('attachments', () => {
      const owner = { accountKey: bytes(0xa0), deviceId: 1 };
      const record = (id: string, size = 10) => ({ id, owner, size, received: 0, complete: false, createdAt: 1, expiresAt: 1000 });

      it('creates, records progress, completes with the final expiry, deletes', async () => {
        expect(await s.createAttachment(record('a'.repeat(22)), 5)).toBe('created');
        expect(await s.recordUploadProgress('a'.repeat(22), 4, 9999)).toMatchObject({ received: 4, complete: false, expiresAt: 1000 });
        expect(await s.recordUploadProgress('a'.repeat(22), 10, 9999)).toMatchObject({ received: 10, complete: true, expiresAt: 9999 });
        expect(await s.getAttachment('a'.repeat(22))).toMatchObject({ owner, size: 10, complete: true });
        expect(await s.deleteAttachment('a'.repeat(22))).toBe(true);
        expect(await s.getAttachment('a'.repeat(22))).toBeUndefined();
        expect(await s.recordUploadProgress('a'.repeat(22), 1, 1)).toBeUndefined();
      });

      it('limits unfinished uploads per device; sweeps expired ones', async () => {
        expect(await s.createAttachment(record('b'.repeat(22)), 2)).toBe('created');
        expect(await s.createAttachment(record('c'.repeat(22)), 2)).toBe('created');
        expect(await s.createAttachment(record('d'.repeat(22)), 2)).toBe('too-many-uploads');
        const swept = await s.sweep(1000);
        expect(swept.attachments.sort()).toEqual(['b'.repeat(22), 'c'.repeat(22)]);
        expect((await s.stats()).attachments).toBe(0);
      });
    });

    if (options.durable)
      it('keeps everything acknowledged across a reopen', async () => {
        if (!fx.reopen) throw new Error('a durable backend must support reopen');
        const a = newAccount();
        await s.registerDevice(registration(device(a, 1), { oneTimePreKeys: ids(1, 2) }));
        await s.registerDevice(registration(device(a, 2)));
        await s.storeMessages(msg({ accountKey: a, deviceId: 2 }, [{ accountKey: a, deviceId: 1 }], 'durable'));
        s = await fx.reopen();
        expect((await s.fetchMessages({ accountKey: a, deviceId: 1 }, 0, 10, 1000)).map((m) => m.clientId)).toEqual(['durable']);
        expect((await s.preKeyCounts({ accountKey: a, deviceId: 1 }))?.oneTimePreKeys).toBe(2);
      });

    it('answers ping', async () => {
      await expect(s.ping()).resolves.toBeUndefined();
    });
  });
}

// The contract every RelayStorage backend must pass (spec/09-relay.md §7).
// storage-sqlite.test.ts runs it against SQLite in memory and on disk; a
// PostgreSQL backend adds one more `describeStorageContract(...)` call.
//
// Storage is opaque to bytes, so the fixtures are arbitrary byte strings,
// not real certificates or keys.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  AttachmentQuota,
  DeviceAddress,
  DeviceRecord,
  OneTimeBudget,
  PreKeyUpload,
  QuotaThresholds,
  RegisterInput,
  RelayStorage,
  StoreFanoutInput,
  StoreMessagesInput,
} from '../src/storage/types.ts';
import { DEVICE_PURGE_CHUNK_ROWS } from '../src/storage/rules/devices.ts';
import { SWEEP_CHUNK_ROWS } from '../src/storage/rules/housekeeping.ts';

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

    const budget = (requester: Uint8Array, more: Partial<OneTimeBudget> = {}): OneTimeBudget => ({
      requester,
      perRequester: { capacity: 100, windowMs: 10_000 },
      perTarget: { capacity: 100, windowMs: 10_000 },
      perPair: { capacity: 100, windowMs: 10_000 },
      now: 1000,
      ...more,
    });

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

      describe('removing or replacing a device with a full mailbox (issue 15)', () => {
        const BOUND = DEVICE_PURGE_CHUNK_ROWS;
        const ROWS = 2 * BOUND + 37;
        const countRows = async (d: DeviceAddress) => (await s.fetchMessages(d, 0, 10 * ROWS, 1000)).length;
        /** Registers `d` and a sender, and queues ROWS envelopes in d's mailbox. */
        const fill = async (d: DeviceRecord) => {
          const peer = newAccount();
          await s.registerDevice(registration(d));
          await s.registerDevice(registration(device(peer, 1)));
          const to = { accountKey: d.accountKey, deviceId: d.deviceId };
          for (let i = 0; i < ROWS; i += 100) {
            const n = Math.min(100, ROWS - i);
            await s.storeMessages({
              ...msg({ accountKey: peer, deviceId: 1 }, [], 'x', { maxQueuedMessages: 10 * ROWS, maxQueuedBytes: 1 << 24 }),
              envelopes: Array.from({ length: n }, (_, j) => ({ recipient: to, clientId: `p${i + j}`, envelope: bytes(7, 64) })),
            });
          }
          expect(await countRows(to)).toBe(ROWS);
          return to;
        };
        /** Sweeps until done; every write deletes at most SWEEP_CHUNK_ROWS rows of the mailbox. */
        const purge = async (d: DeviceAddress) => {
          let left = await countRows(d);
          for (let i = 0; i < ROWS; i++) {
            const r = await s.sweep(1000);
            const now = await countRows(d);
            expect(left - now).toBeLessThanOrEqual(SWEEP_CHUNK_ROWS);
            left = now;
            if (!r.more) break;
          }
          expect(left).toBe(0);
        };

        it(`a removal's write deletes at most ${BOUND} mailbox rows; bounded sweep writes purge the rest`, async () => {
          const d = device(newAccount(), 1);
          const to = await fill(d);
          expect(await s.removeDevice(to, d.certificateHash, 2000)).toBe('removed');
          const left = await countRows(to);
          expect(ROWS - left).toBeLessThanOrEqual(BOUND);
          expect(left).toBeGreaterThan(0);
          expect(await s.getDevice(to)).toBeUndefined();
          // The id cannot be registered again while its old mailbox is being purged: no old row reaches a new device.
          const next = device(d.accountKey, 1, 2);
          expect(await s.registerDevice(registration(next))).toEqual({ status: 'purging' });
          expect(left - (await countRows(to))).toBeLessThanOrEqual(BOUND);
          expect(await s.getDevice(to)).toBeUndefined();
          await purge(to);
          expect((await s.registerDevice(registration(next))).status).toBe('created');
          expect(await countRows(to)).toBe(0);
        });

        it(`a replacement's write deletes at most ${BOUND} mailbox rows and answers 'purging' until the rest is gone`, async () => {
          const d = device(newAccount(), 1);
          const to = await fill(d);
          const next = device(d.accountKey, 1, 2);
          expect(await s.registerDevice(registration(next))).toEqual({ status: 'purging' });
          expect(ROWS - (await countRows(to))).toBeLessThanOrEqual(BOUND);
          // The old device is gone for good (its certificate revoked); the new one waits for the purge.
          expect(await s.getDevice(to)).toBeUndefined();
          expect(await s.registerDevice(registration(d))).toEqual({ status: 'revoked' });
          if (fx.reopen) s = await fx.reopen();
          await purge(to);
          expect((await s.registerDevice(registration(next))).status).toBe('created');
          expect(await countRows(to)).toBe(0);
          expect((await s.stats()).queuedMessages).toBe(0);
        });
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
          counts: { oneTimePreKeys: 5, kemPreKeys: 2, signedPreKeyId: 1, signedPreKeyV2: false, lastResortKemPreKeyId: 1 },
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

      it("'all' covers every device but the excluded one; a spent budget keeps the keys", async () => {
        await s.registerDevice(registration(device(a, 2), { oneTimePreKeys: ids(1, 1) }));
        const all = await s.claimPreKeys({ accountKey: a, deviceId: 'all', exclude: { accountKey: a, deviceId: 2 } });
        expect(all.map((c) => c.deviceId)).toEqual([1]);
        const none = { capacity: 0, windowMs: 1000 };
        const held = await s.claimPreKeys({ accountKey: a, deviceId: 'all', budget: budget(newAccount(), { perTarget: none }) });
        expect(held.map((c) => [c.deviceId, c.oneTimePreKey, c.kemLastResort, c.budgetSpent])).toEqual([
          [1, null, true, 'target'],
          [2, null, true, 'target'],
        ]);
        expect((await s.preKeyCounts({ accountKey: a, deviceId: 2 }))?.oneTimePreKeys).toBe(1);
      });

      // The two backends once disagreed here (PostgreSQL left the device out): a device asking for
      // its own bundle by id (the restore check, client spec §7.5) must get it.
      it('the exclusion applies to an all-devices claim only: a device may claim its own bundle by id', async () => {
        const me = { accountKey: a, deviceId: 1 };
        expect((await s.claimPreKeys({ accountKey: a, deviceId: 1, exclude: me })).map((c) => c.deviceId)).toEqual([1]);
        expect(await s.claimPreKeys({ accountKey: a, deviceId: 'all', exclude: me })).toEqual([]);
      });

      it('one-time keys are handed out within stored budgets per target, per pair and per requester', async () => {
        await s.uploadPreKeys({ accountKey: a, deviceId: 1 }, { oneTimePreKeys: ids(1, 9), kemPreKeys: ids(1, 4) }, LIMITS);
        const b = newAccount();
        await s.registerDevice(registration(device(b, 1), { oneTimePreKeys: ids(1, 9) }));
        const [r1, r2] = [newAccount(), newAccount()];
        const limits = { perTarget: { capacity: 3, windowMs: 10_000 }, perPair: { capacity: 2, windowMs: 10_000 } };
        const claim = (target: Uint8Array, requester: Uint8Array, now = 1000, more: Partial<OneTimeBudget> = {}) =>
          s
            .claimPreKeys({ accountKey: target, deviceId: 1, budget: budget(requester, { ...limits, now, ...more }) })
            .then((c) => c[0]?.budgetSpent ?? (c[0]?.oneTimePreKey ? 'taken' : 'none'));
        // One requester takes at most its pair budget from a target...
        expect([await claim(a, r1), await claim(a, r1), await claim(a, r1)]).toEqual(['taken', 'taken', 'pair']);
        // ... and all requesters together at most the target's.
        expect([await claim(a, r2), await claim(a, r2)]).toEqual(['taken', 'target']);
        // A requester's own budget covers every target.
        const tight = { perRequester: { capacity: 1, windowMs: 10_000 } };
        const r3 = newAccount();
        expect([await claim(b, r3, 1000, tight), await claim(b, r3, 1000, tight)]).toEqual(['taken', 'requester']);
        // Buckets refill with time; the sweep forgets only full ones.
        expect(await claim(a, r2, 1000 + Math.ceil(10_000 / 3))).toBe('taken');
        expect((await s.sweep(100_000)).budgets).toBeGreaterThan(0);
        if (fx.reopen) {
          // Kept in storage: a restart forgives nobody.
          expect(await claim(b, r3, 200_000, tight)).toBe('taken');
          s = await fx.reopen();
          expect(await claim(b, r3, 200_000, tight)).toBe('requester');
        }
        // Each hand-out took one key of each pool: one budget protects both.
        expect(await s.preKeyCounts({ accountKey: a, deviceId: 1 })).toMatchObject({ oneTimePreKeys: 5, kemPreKeys: 0 });
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

      it("limits one sender account's share of a mailbox; other senders are still served", async () => {
        const share = { maxQueuedMessages: 10, maxQueuedMessagesPerSender: 2 };
        const carol = { accountKey: newAccount(), deviceId: 1 };
        await s.registerDevice(registration(device(carol.accountKey, 1)));
        expect((await s.storeMessages(msg(alice, [bob, bob2], 'a1', share))).status).toBe('stored');
        // The sender's other device counts against the same account share.
        expect((await s.storeMessages(msg(alice2, [bob, bob2, alice], 'a2', share))).status).toBe('stored');
        const r = await s.storeMessages(msg(alice, [bob, bob2], 'a3', share));
        expect(r).toMatchObject({ status: 'mailbox-full', scope: 'sender-share' });
        expect(await s.storeMessages(msg(carol, [bob, bob2], 'c1', share))).toMatchObject({ status: 'stored', stored: 2 });
        // Bytes too.
        const bytesShare = { maxQueuedBytesPerSender: 2 * 'c1->1'.length };
        expect(await s.storeMessages(msg(carol, [bob, bob2], 'c2', bytesShare))).toMatchObject({ status: 'stored' });
        expect(await s.storeMessages(msg(carol, [bob, bob2], 'c3', bytesShare))).toMatchObject({ scope: 'sender-share' });
        // An account's own devices are not limited by a share of each other's mailboxes.
        for (const id of ['s1', 's2', 's3']) {
          expect(await s.storeMessages(msg(alice, [alice2], id, { maxQueuedMessagesPerSender: 1 }))).toMatchObject({ status: 'stored' });
        }
        // Acknowledging frees the share.
        for (const d of [bob, bob2]) {
          const mine = (await s.fetchMessages(d, 0, 10, 1000)).filter((m) => m.sender.accountKey.join() === alice.accountKey.join());
          await s.ackMessages(
            d,
            mine.map((m) => m.seq),
          );
        }
        expect((await s.storeMessages(msg(alice, [bob, bob2], 'a3', share))).status).toBe('stored');
      });

      it('expired envelopes not yet swept do not count against a full mailbox', async () => {
        const full = { maxQueuedMessages: 2, now: 1000 };
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'old1', { ...full, expiresAt: 2000 }));
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'old2', { ...full, expiresAt: 9000 }));
        expect(await s.storeMessages(msg(alice, [bob, bob2, alice2], 'new', full))).toMatchObject({
          status: 'mailbox-full',
          scope: 'mailbox',
        });
        // 'old1' expired at 2000; no sweep ran.
        expect(await s.storeMessages(msg(alice, [bob, bob2, alice2], 'new', { ...full, now: 3000 }))).toMatchObject({ status: 'stored' });
        expect((await s.fetchMessages(bob, 0, 10, 3000)).map((m) => m.clientId)).toEqual(['old2', 'new']);
        const t = {
          mailboxMessages: 2,
          mailboxBytes: 1e9,
          senderMessages: 2,
          senderBytes: 1e9,
          attachmentBytesDevice: 1e9,
          attachmentBytesAccount: 1e9,
        };
        expect(await s.quotaPressure(t, 3000)).toMatchObject({ mailboxMessages: 3, senderShares: 3 });
        expect((await s.stats()).queuedMessages).toBe(6);
      });

      it('tracks queued counts and bytes', async () => {
        await s.storeMessages(msg(alice, [bob, bob2, alice2], 'a'));
        const stats = await s.stats();
        expect(stats.queuedMessages).toBe(3);
        expect(stats.queuedBytes).toBe(3 * 'a->1'.length);
      });
    });

    // A sender-key group message: one envelope for many devices, stored once (spec/09-relay.md §4.3.1).
    describe('group fan-out', () => {
      let alice: DeviceAddress;
      let alice2: DeviceAddress;
      let bob: DeviceAddress;
      let bob2: DeviceAddress;
      let carol: DeviceAddress;
      beforeEach(async () => {
        const a = newAccount();
        const b = newAccount();
        alice = { accountKey: a, deviceId: 1 };
        alice2 = { accountKey: a, deviceId: 2 };
        bob = { accountKey: b, deviceId: 1 };
        bob2 = { accountKey: b, deviceId: 2 };
        carol = { accountKey: newAccount(), deviceId: 1 };
        for (const d of [alice, alice2, bob, bob2, carol]) await s.registerDevice(registration(device(d.accountKey, d.deviceId)));
      });

      const group = () => [alice2, bob, bob2, carol];
      const payload = (tag: string, length = 40) => new Uint8Array(length).fill(tag.charCodeAt(0));
      const fanout = (
        to: DeviceAddress[],
        id: string,
        extra: Partial<StoreFanoutInput> = {},
        envelope = payload(id),
      ): StoreFanoutInput => ({
        sender: alice,
        clientId: id,
        envelope,
        recipients: to.map((recipient) => ({ recipient })),
        now: 1000,
        expiresAt: 100_000,
        maxQueuedMessages: 100,
        maxQueuedBytes: 1 << 20,
        ...extra,
      });

      it('stores the envelope once; every recipient fetches what a single send would have given it', async () => {
        expect(await s.storeFanout(fanout(group(), 'g1'))).toMatchObject({ status: 'stored', stored: 4, duplicates: 0 });
        expect((await s.storeMessages(msg(alice, group(), 'single'))).status).toBe('stored');
        for (const d of group()) {
          const [g, single] = await s.fetchMessages(d, 0, 10, 1000);
          expect(g).toEqual({ ...single, seq: g?.seq, clientId: 'g1', envelope: payload('g1') });
          expect((single?.seq as number) > (g?.seq as number)).toBe(true);
        }
        const stats = await s.stats();
        expect(stats).toMatchObject({ payloads: 1, queuedMessages: 8 });
        // Each mailbox counts the payload's size, as if it held its own copy.
        expect(stats.queuedBytes).toBe(4 * 40 + group().reduce((n, d) => n + `single->${d.deviceId}`.length, 0));
      });

      it('checks exact device lists and certificate hashes per recipient account, storing nothing when refused', async () => {
        const ghost = { accountKey: newAccount(), deviceId: 1 };
        const r = await s.storeFanout(fanout([alice, bob, { ...bob, deviceId: 7 }, carol, ghost], 'g'));
        expect(r.status).toBe('mismatched-devices');
        if (r.status !== 'mismatched-devices') return;
        const byAccount = new Map(r.mismatches.map((m) => [m.accountKey.join(), m]));
        expect(byAccount.get(alice.accountKey.join())).toMatchObject({ missingDevices: [2], extraDevices: [1] });
        expect(byAccount.get(bob.accountKey.join())).toMatchObject({ missingDevices: [2], extraDevices: [7] });
        expect(byAccount.get(ghost.accountKey.join())).toMatchObject({ missingDevices: [], extraDevices: [1] });
        expect(byAccount.has(carol.accountKey.join())).toBe(false);

        const hashed = fanout(group(), 'h');
        const recipients = hashed.recipients.map((r) => ({
          ...r,
          certificateHash: device(r.recipient.accountKey, r.recipient.deviceId).certificateHash,
        }));
        await s.registerDevice(registration(device(bob.accountKey, 2, 2)));
        expect(await s.storeFanout({ ...hashed, recipients })).toMatchObject({ status: 'stale-devices', stale: [{ staleDevices: [2] }] });
        expect(await s.stats()).toMatchObject({ payloads: 0, queuedMessages: 0 });
      });

      it('is idempotent by client id per recipient device, also after acknowledgement', async () => {
        await s.storeFanout(fanout(group(), 'same'));
        expect(await s.storeFanout(fanout(group(), 'same'))).toMatchObject({ status: 'stored', stored: 0, duplicates: 4 });
        const [m] = await s.fetchMessages(bob, 0, 10, 1000);
        await s.ackMessages(bob, [m?.seq as number]);
        expect(await s.storeFanout(fanout(group(), 'same'))).toMatchObject({ status: 'stored', stored: 0, duplicates: 4 });
        expect(await s.fetchMessages(bob, 0, 10, 1000)).toEqual([]);
        expect(await s.stats()).toMatchObject({ payloads: 1, queuedMessages: 3 });
        // The same id as a single send to the same devices is the same message: not stored again.
        expect(await s.storeMessages(msg(alice, group(), 'same'))).toMatchObject({ stored: 0, duplicates: 4 });
        // A retry after a device joined stores for the newcomer only, as a payload of its own.
        const bob3 = { ...bob, deviceId: 3 };
        await s.registerDevice(registration(device(bob.accountKey, 3)));
        expect(await s.storeFanout(fanout([...group(), bob3], 'same'))).toMatchObject({ stored: 1, duplicates: 4 });
        expect((await s.fetchMessages(bob3, 0, 10, 1000)).map((x) => x.clientId)).toEqual(['same']);
        expect((await s.stats()).payloads).toBe(2);
      });

      it('is acknowledged per recipient; the payload goes with the last acknowledgement', async () => {
        await s.storeFanout(fanout(group(), 'g'));
        const seqOf = async (d: DeviceAddress) => (await s.fetchMessages(d, 0, 10, 1000))[0]?.seq as number;
        // Someone else's seq is ignored.
        expect(await s.ackMessages(carol, [await seqOf(bob)])).toBe(0);
        const [first, ...rest] = group();
        expect(await s.ackMessages(first as DeviceAddress, [await seqOf(first as DeviceAddress)])).toBe(1);
        expect(await s.fetchMessages(first as DeviceAddress, 0, 10, 1000)).toEqual([]);
        for (const d of rest) expect((await s.fetchMessages(d, 0, 10, 1000)).map((x) => x.envelope)).toEqual([payload('g')]);
        expect((await s.stats()).payloads).toBe(1);
        for (const d of rest) expect(await s.ackMessages(d, [await seqOf(d)])).toBe(1);
        expect(await s.stats()).toMatchObject({ payloads: 0, queuedMessages: 0, queuedBytes: 0 });
      });

      it('expires with its TTL: hidden, then swept with its payload and idempotency records', async () => {
        await s.storeFanout(fanout(group(), 'short', { expiresAt: 5000 }));
        await s.storeFanout(fanout(group(), 'long', { expiresAt: 50_000 }));
        expect((await s.fetchMessages(bob, 0, 10, 6000)).map((m) => m.clientId)).toEqual(['long']);
        expect(await s.sweep(6000)).toMatchObject({ messages: 4, sentIds: 4 });
        expect(await s.stats()).toMatchObject({ payloads: 1, queuedMessages: 4 });
        expect(await s.sweep(60_000)).toMatchObject({ messages: 4 });
        expect(await s.stats()).toMatchObject({ payloads: 0, queuedMessages: 0 });
      });

      it('a recipient device removed or replaced after the send drops only its reference; the last one frees the payload', async () => {
        await s.storeFanout(fanout(group(), 'g'));
        expect(await s.removeDevice(bob2, device(bob2.accountKey, 2).certificateHash, 2000)).toBe('removed');
        await s.registerDevice(registration(device(carol.accountKey, 1, 2)));
        expect(await s.stats()).toMatchObject({ payloads: 1, queuedMessages: 2 });
        for (const d of [alice2, bob]) expect((await s.fetchMessages(d, 0, 10, 1000)).map((m) => m.clientId)).toEqual(['g']);
        expect(await s.removeDevice(bob, device(bob.accountKey, 1).certificateHash, 2000)).toBe('removed');
        const [m] = await s.fetchMessages(alice2, 0, 10, 1000);
        await s.ackMessages(alice2, [m?.seq as number]);
        expect(await s.stats()).toMatchObject({ payloads: 0, queuedMessages: 0 });
        // The removed device is not named any more: a new group message covers the remaining devices exactly.
        expect((await s.storeFanout(fanout([alice2, carol], 'next'))).status).toBe('stored');
      });

      it('counts the payload against each mailbox and the sender share like a single envelope', async () => {
        const big = payload('x', 300);
        expect((await s.storeFanout(fanout(group(), 'a', {}, big))).status).toBe('stored');
        expect(await s.storeFanout(fanout(group(), 'b', { maxQueuedBytes: 500 }, big))).toMatchObject({
          status: 'mailbox-full',
          scope: 'mailbox',
        });
        expect(await s.storeFanout(fanout(group(), 'c', { maxQueuedMessagesPerSender: 1 }))).toMatchObject({
          status: 'mailbox-full',
          scope: 'sender-share',
        });
        expect((await s.stats()).payloads).toBe(1);
      });

      if (options.durable)
        it('keeps a stored fan-out across a reopen', async () => {
          if (!fx.reopen) throw new Error('a durable backend must support reopen');
          await s.storeFanout(fanout(group(), 'durable'));
          s = await fx.reopen();
          for (const d of group()) expect((await s.fetchMessages(d, 0, 10, 1000)).map((m) => m.envelope)).toEqual([payload('durable')]);
        });
    });

    describe('attachments', () => {
      const owner = { accountKey: bytes(0xa0), deviceId: 1 };
      const record = (id: string, size = 10, who = owner) => ({
        id,
        owner: who,
        size,
        received: 0,
        complete: false,
        createdAt: 1,
        expiresAt: 1000,
      });
      const quota = (more: Partial<AttachmentQuota> = {}): AttachmentQuota => ({
        maxPending: 5,
        maxBytesPerDevice: 1000,
        maxBytesPerAccount: 1000,
        ...more,
      });
      let nextKey = 1;
      const requestKey = () => bytes(nextKey++ & 0xff, 16);

      it('creates, records progress, completes with the final expiry, deletes', async () => {
        expect(await s.createAttachment(record('a'.repeat(22)), requestKey(), quota())).toMatchObject({ status: 'created' });
        expect(await s.recordUploadProgress('a'.repeat(22), 4, 9999)).toMatchObject({ received: 4, complete: false, expiresAt: 1000 });
        expect(await s.recordUploadProgress('a'.repeat(22), 10, 9999)).toMatchObject({ received: 10, complete: true, expiresAt: 9999 });
        expect(await s.getAttachment('a'.repeat(22))).toMatchObject({ owner, size: 10, complete: true });
        expect(await s.deleteAttachment('a'.repeat(22))).toBe(true);
        expect(await s.getAttachment('a'.repeat(22))).toBeUndefined();
        expect(await s.recordUploadProgress('a'.repeat(22), 1, 1)).toBeUndefined();
      });

      it('limits unfinished uploads per device; sweeps expired ones', async () => {
        expect(await s.createAttachment(record('b'.repeat(22)), requestKey(), quota({ maxPending: 2 }))).toMatchObject({
          status: 'created',
        });
        expect(await s.createAttachment(record('c'.repeat(22)), requestKey(), quota({ maxPending: 2 }))).toMatchObject({
          status: 'created',
        });
        expect(await s.createAttachment(record('d'.repeat(22)), requestKey(), quota({ maxPending: 2 }))).toEqual({
          status: 'too-many-uploads',
        });
        const swept = await s.sweep(1000);
        expect(swept.attachments.sort()).toEqual(['b'.repeat(22), 'c'.repeat(22)]);
        expect((await s.stats()).attachments).toBe(0);
      });

      it('the same request key returns the first upload and stores nothing', async () => {
        const key = requestKey();
        expect(await s.createAttachment(record('e'.repeat(22)), key, quota())).toMatchObject({ status: 'created' });
        const again = await s.createAttachment(record('f'.repeat(22)), key, quota());
        expect(again).toMatchObject({ status: 'existing', record: { id: 'e'.repeat(22), size: 10 } });
        expect(await s.getAttachment('f'.repeat(22))).toBeUndefined();
        // Another device of the account may use the same bytes as its own key.
        const other = { ...owner, deviceId: 2 };
        expect(await s.createAttachment(record('g'.repeat(22), 10, other), key, quota())).toMatchObject({ status: 'created' });
        expect((await s.stats()).attachments).toBe(2);
      });

      it('limits stored bytes per device and per account; deleting and expiry free them', async () => {
        const q = quota({ maxBytesPerDevice: 100, maxBytesPerAccount: 150 });
        const dev2 = { ...owner, deviceId: 2 };
        expect(await s.createAttachment(record('h'.repeat(22), 60), requestKey(), q)).toMatchObject({ status: 'created' });
        expect(await s.createAttachment(record('i'.repeat(22), 41), requestKey(), q)).toEqual({
          status: 'quota-exceeded',
          scope: 'device',
          limit: 100,
        });
        expect(await s.createAttachment(record('j'.repeat(22), 80, dev2), requestKey(), q)).toMatchObject({ status: 'created' });
        expect(await s.createAttachment(record('k'.repeat(22), 20, dev2), requestKey(), q)).toEqual({
          status: 'quota-exceeded',
          scope: 'account',
          limit: 150,
        });
        // Another account is not affected.
        const stranger = { accountKey: bytes(0xa1), deviceId: 1 };
        expect(await s.createAttachment(record('l'.repeat(22), 100, stranger), requestKey(), q)).toMatchObject({ status: 'created' });
        const t: QuotaThresholds = {
          mailboxMessages: 1e9,
          mailboxBytes: 1e9,
          senderMessages: 1e9,
          senderBytes: 1e9,
          attachmentBytesDevice: 80,
          attachmentBytesAccount: 120,
        };
        expect(await s.quotaPressure(t, 1)).toMatchObject({ attachmentBytesDevice: 2, attachmentBytesAccount: 1 });
        expect(await s.deleteAttachment('h'.repeat(22))).toBe(true);
        expect(await s.createAttachment(record('k'.repeat(22), 20, dev2), requestKey(), q)).toMatchObject({ status: 'created' });
        await s.sweep(1000);
        expect(await s.quotaPressure(t, 1000)).toMatchObject({ attachmentBytesDevice: 0, attachmentBytesAccount: 0 });
      });

      it('expired uploads not yet swept do not count against a quota', async () => {
        const q = quota({ maxBytesPerDevice: 100, maxBytesPerAccount: 100 });
        expect(await s.createAttachment(record('m'.repeat(22), 100), requestKey(), q)).toEqual({
          status: 'created',
          record: record('m'.repeat(22), 100),
        });
        expect(
          await s.createAttachment({ ...record('n'.repeat(22), 100), createdAt: 999, expiresAt: 5000 }, requestKey(), q),
        ).toMatchObject({
          status: 'quota-exceeded',
        });
        // 'm' expired at 1000; no sweep ran.
        const later = await s.createAttachment({ ...record('n'.repeat(22), 100), createdAt: 1000, expiresAt: 5000 }, requestKey(), q);
        expect(later).toMatchObject({ status: 'created', purged: ['m'.repeat(22)] });
        expect(await s.getAttachment('m'.repeat(22))).toBeUndefined();
      });
    });

    describe('replay records', () => {
      const seen = (signer: DeviceAddress, nonce: number, now = 1000, maxPerSigner = 3) =>
        s.rememberRequest({ signer, nonce: bytes(nonce, 16), now, expiresAt: now + 600_000, maxPerSigner });

      it('remembers each (signer, nonce) once, and refuses a signer over its quota alone', async () => {
        const d1 = { accountKey: newAccount(), deviceId: 1 };
        const d2 = { ...d1, deviceId: 2 };
        expect(await seen(d1, 1)).toBe('fresh');
        expect(await seen(d1, 1)).toBe('replayed');
        // The same nonce from another signer is another request.
        expect(await seen(d2, 1)).toBe('fresh');
        expect([await seen(d1, 2), await seen(d1, 3), await seen(d1, 4)]).toEqual(['fresh', 'fresh', 'over-quota']);
        // A refused request was not remembered: it is not a replay later.
        expect(await seen(d1, 4)).toBe('over-quota');
        expect(await seen(d2, 2)).toBe('fresh');
        // Once the records expire the signer is served again, and the sweep forgets them.
        expect(await seen(d1, 5, 1000 + 700_000)).toBe('fresh');
        expect((await s.sweep(1000 + 700_000)).seenRequests).toBeGreaterThanOrEqual(5);
        if (fx.reopen) {
          s = await fx.reopen();
          expect(await seen(d1, 5, 1000 + 700_000)).toBe('replayed');
        }
      });

      it('counts concurrent requests of one signer exactly', async () => {
        const d = { accountKey: newAccount(), deviceId: 1 };
        const verdicts = await Promise.all(Array.from({ length: 12 }, (_, i) => seen(d, i + 1, 1000, 5)));
        expect(verdicts.filter((v) => v === 'fresh')).toHaveLength(5);
        expect(verdicts.filter((v) => v === 'over-quota')).toHaveLength(7);
      });

      it('a send writes its replay record in its own transaction; a replayed or over-quota send stores nothing', async () => {
        const alice = { accountKey: newAccount(), deviceId: 1 };
        const bob = { accountKey: newAccount(), deviceId: 1 };
        await s.registerDevice(registration(device(alice.accountKey, 1)));
        await s.registerDevice(registration(device(bob.accountKey, 1)));
        const replay = (nonce: number) => ({ signer: alice, nonce: bytes(nonce, 16), now: 1000, expiresAt: 601_000, maxPerSigner: 2 });
        const stored = async () => (await s.fetchMessages(bob, 0, 10, 1000)).map((m) => m.clientId);
        expect(await s.storeMessages(msg(alice, [bob], 's1', { replay: replay(1) }))).toMatchObject({ status: 'stored', stored: 1 });
        // The record was written with the send: the nonce is used.
        expect(await seen(alice, 1, 1000, 2)).toBe('replayed');
        expect(await s.storeMessages(msg(alice, [bob], 's2', { replay: replay(1) }))).toEqual({
          status: 'request-refused',
          verdict: 'replayed',
        });
        // A retry (known id) under a used nonce is refused too: the record is checked first.
        expect(await s.storeMessages(msg(alice, [bob], 's1', { replay: replay(1) }))).toMatchObject({ status: 'request-refused' });
        expect(await s.storeMessages(msg(alice, [bob], 's3', { replay: replay(2) }))).toMatchObject({ status: 'stored', stored: 1 });
        expect(await s.storeMessages(msg(alice, [bob], 's4', { replay: replay(3) }))).toEqual({
          status: 'request-refused',
          verdict: 'over-quota',
        });
        // Over quota kept no record: once the quota frees, that nonce is fresh.
        expect(await seen(alice, 3, 700_000, 2)).toBe('fresh');
        expect(await stored()).toEqual(['s1', 's3']);
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

    describe('franking (spec/17-franking-and-reports.md)', () => {
      it('keeps the first frank key of a period (insert-if-absent), finds it, and sweeps it at destroyAt', async () => {
        const first = await s.frankKey(7, bytes(0xa1), 5000);
        expect(first).toEqual(bytes(0xa1));
        // A second candidate (another process) gets the stored key.
        const [x, y] = await Promise.all([s.frankKey(7, bytes(0xa2), 5000), s.frankKey(8, bytes(0xb1), 6000)]);
        expect(x).toEqual(bytes(0xa1));
        expect(y).toEqual(bytes(0xb1));
        expect(await s.findFrankKey(7)).toEqual(bytes(0xa1));
        expect(await s.findFrankKey(9)).toBeUndefined();
        expect(await s.sweepFrankKeys(4999)).toBe(0);
        expect(await s.sweepFrankKeys(5000)).toBe(1);
        expect(await s.findFrankKey(7)).toBeUndefined();
        expect(await s.findFrankKey(8)).toEqual(bytes(0xb1));
      });

      it("stores each envelope's delivery record with its mailbox row, single sends and fan-outs alike", async () => {
        const a = { accountKey: newAccount(), deviceId: 1 };
        const b1 = { accountKey: newAccount(), deviceId: 1 };
        const b2 = { accountKey: b1.accountKey, deviceId: 2 };
        for (const d of [a, b1, b2]) await s.registerDevice(registration(device(d.accountKey, d.deviceId)));
        const send = msg(a, [b1, b2], 'm');
        await s.storeMessages({ ...send, envelopes: send.envelopes.map((e, i) => (i === 0 ? { ...e, delivery: bytes(0xd1, 98) } : e)) });
        await s.storeFanout({
          sender: a,
          clientId: 'g',
          envelope: bytes(0xee, 40),
          recipients: [
            { recipient: b1, delivery: bytes(0xd2, 98) },
            { recipient: b2, delivery: bytes(0xd3, 98) },
          ],
          now: 1000,
          expiresAt: 100_000,
          maxQueuedMessages: 100,
          maxQueuedBytes: 1 << 20,
        });
        const one = await s.fetchMessages(b1, 0, 10, 1000);
        const two = await s.fetchMessages(b2, 0, 10, 1000);
        expect(one.map((m) => m.delivery)).toEqual([bytes(0xd1, 98), bytes(0xd2, 98)]);
        expect(two.map((m) => m.delivery)).toEqual([undefined, bytes(0xd3, 98)]);
      });

      it("queues a report once per (reporter account, envelope id), within the reporter's budget, and lists them in order", async () => {
        const reporter = { accountKey: newAccount(), deviceId: 1 };
        const other = { accountKey: newAccount(), deviceId: 3 };
        const file = (who: DeviceAddress, envelope: number, at: number) =>
          s.fileReport({
            reporter: who,
            envelopeId: bytes(envelope, 16),
            receivedAt: at,
            report: Uint8Array.of(envelope),
            maxPerWindow: 2,
            windowMs: 1000,
          });
        expect(await file(reporter, 1, 10_000)).toEqual({ status: 'queued', id: expect.any(Number) });
        expect(await file(reporter, 1, 10_001)).toEqual({ status: 'duplicate' });
        expect(await s.reportedBefore(reporter.accountKey, bytes(1, 16))).toBe(true);
        expect(await s.reportedBefore(other.accountKey, bytes(1, 16))).toBe(false);
        // Another account may report the same envelope id (its own copy).
        expect((await file(other, 1, 10_002)).status).toBe('queued');
        expect((await file(reporter, 2, 10_003)).status).toBe('queued');
        expect(await file(reporter, 3, 10_004)).toEqual({ status: 'over-budget' });
        // The window slides.
        expect((await file(reporter, 3, 11_001)).status).toBe('queued');
        const all = await s.listReports(0, 10);
        expect(all.map((r) => [r.reporter.deviceId, r.report[0], r.receivedAt])).toEqual([
          [1, 1, 10_000],
          [3, 1, 10_002],
          [1, 2, 10_003],
          [1, 3, 11_001],
        ]);
        expect((await s.listReports(all[1]?.id as number, 1)).map((r) => r.report[0])).toEqual([2]);
        expect(await s.getReport(all[0]?.id as number)).toEqual(all[0]);
        expect(await s.getReport(999_999)).toBeUndefined();
      });
    });

    it('answers ping', async () => {
      await expect(s.ping()).resolves.toBeUndefined();
    });
  });
}

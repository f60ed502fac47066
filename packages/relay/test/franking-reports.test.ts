// Relay franking and abuse reports through the real relay, on SQLite and
// on PostgreSQL (spec/14-franking.md §4, §7): a v2 send with a franking tag
// is delivered with {envelopeId, acceptedAt, frankKeyId, frank, frankingTag};
// the recipient's report of a text, a file pointer or a group message
// verifies and is queued; altered content, another recipient, a replayed
// envelope id, a context message of another sender, a sealed item, a
// destroyed frank key and a spent report budget are refused with their
// codes; two relay processes on one database agree on the frank key.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AbuseReport,
  FRANK_KEY_PERIOD_MS,
  FRANK_KEY_RETENTION_MS,
  type ReportItem,
  decodeReport,
  defaultProvider,
  encodeCbor,
  encodeReport,
  utf8,
} from '@parley/core';
import { afterEach, describe, expect, it } from 'vitest';
import { reportsCommand } from '../src/cli/reports.ts';
import { withDefaults } from '../src/config.ts';
import { REPORTS_PER_DAY } from '../src/routes/reports.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { RelayStorage } from '../src/storage/types.ts';
import { sweepOnce } from '../src/sweeper.ts';
import {
  type ReceivedEnvelope,
  type TestDevice,
  envelopeFor,
  eventually,
  inject,
  json,
  listeningRelay,
  makeDevice,
  register,
  testRelay,
  toBase64Url,
} from './support.ts';
import { type Delivery, type Franked, be8, franked, fromB64, reportItemOf } from './support/franked-report.ts';
import { storageBackends } from './support/backends.ts';

const b = defaultProvider().backend;

const BACKENDS = storageBackends('parley_frank', { poolSize: 2 });

interface Delivered {
  seq: number;
  sender: { account: string; deviceId: number };
  delivery?: Delivery;
}

/** The report item Bob's client builds; the tag is the one the relay delivered with the message. */
const itemOf = (d: Delivery, m: Franked, recipientDevice: number, role: 1 | 2 = 1): ReportItem => ({
  ...reportItemOf(d, m, recipientDevice, role),
  frankingTag: fromB64(d.frankingTag),
});

const report = (items: ReportItem[], reason = 3): AbuseReport => ({ reason, comment: 'harassment', items });

describe.each(BACKENDS)('relay franking and reports on $name', (backend) => {
  let relay: Awaited<ReturnType<typeof testRelay>>;
  const extra: Awaited<ReturnType<typeof testRelay>>[] = [];
  let drop: () => Promise<void>;
  let openStorage: () => Promise<RelayStorage>;
  let alice: TestDevice;
  let bob: TestDevice;
  let bob2: TestDevice;
  let carol: TestDevice;

  async function setup() {
    const database = backend.database();
    drop = database.drop;
    openStorage = database.open;
    relay = await testRelay({}, { clock: true, storage: await openStorage() });
    alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    bob2 = makeDevice(bob.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
    carol = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    for (const d of [alice, bob, bob2, carol]) await register(relay.app, d);
  }
  afterEach(async () => {
    for (const r of extra.splice(0)) await r.close();
    await relay.close();
    await drop();
  });

  let sends = 0;
  /** Alice sends `m` to both of Bob's devices (one tag, one frank per device); returns what each fetched. */
  async function send(m: Franked, app = relay.app, to: TestDevice[] = [bob, bob2], tagged = true) {
    const id = `m${++sends}`;
    const r = await inject(app, alice.signer, {
      method: 'POST',
      url: '/v1/messages',
      json: {
        messages: to.map((d) => ({ ...envelopeFor(d, id), ...(tagged ? { frankingTag: toBase64Url(m.tag) } : {}) })),
      },
    });
    expect(r.statusCode).toBe(200);
    const out: Delivered[] = [];
    for (const d of to) {
      const fetched = await inject(app, d.signer, { method: 'GET', url: '/v1/messages' });
      expect(fetched.statusCode, fetched.body).toBe(200);
      const inbox = json<{ messages: Delivered[] }>(fetched);
      const last = inbox.messages.at(-1) as Delivered;
      out.push(last);
      await inject(app, d.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs: [last.seq] } });
    }
    return out;
  }

  const file = (r: AbuseReport, by: TestDevice = bob, app = relay.app) =>
    inject(app, by.signer, { method: 'POST', url: '/v2/reports', json: { report: toBase64Url(encodeReport(r)) } });
  const codeOf = (r: { body: string }) => json<{ code: string }>(r).code;

  it('delivers a frank with a tagged send, none without; a report of a text verifies and is queued once', async () => {
    await setup();
    const m = franked(alice, utf8('you will regret this'));
    const [toBob, toBob2] = await send(m);
    const d = toBob?.delivery as Delivery;
    expect(d).toMatchObject({ frankingTag: toBase64Url(m.tag), frankKeyId: Math.floor(d.acceptedAt / FRANK_KEY_PERIOD_MS) });
    expect(fromB64(d.envelopeId)).toHaveLength(16);
    // Each recipient envelope has its own id and frank.
    expect(toBob2?.delivery?.envelopeId).not.toBe(d.envelopeId);
    expect(toBob2?.delivery?.frank).not.toBe(d.frank);
    const [untagged] = await send(m, relay.app, [bob, bob2], false);
    expect(untagged?.delivery).toBeUndefined();

    const r = await file(report([itemOf(d, m, 1)]));
    expect(r.statusCode).toBe(202);
    const queued = await relay.app.relay.storage.listReports(0, 10);
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ reporter: { deviceId: 1 }, envelopeId: fromB64(d.envelopeId) });
    expect(decodeReport(queued[0]?.report as Uint8Array).items[0]?.plaintext).toEqual(m.plaintext);

    // The same envelope again (the replayed envelope id): refused, nothing more queued.
    const again = await file(report([itemOf(d, m, 1)], 5));
    expect(again.statusCode).toBe(409);
    expect(codeOf(again)).toBe('REPORT_DUPLICATE');
    expect(await relay.app.relay.storage.listReports(0, 10)).toHaveLength(1);
  });

  it('a report of a file pointer and of a group fan-out verifies, with context from the same sender', async () => {
    await setup();
    // The pointer (id, key, digest) inside the franked plaintext commits to one file (11 §5).
    const pointer = encodeCbor([1, b.randomBytes(16), b.randomBytes(32), b.sha256(utf8('the file')), 8]);
    const fileMsg = franked(alice, encodeCbor([2, 'file', pointer]));
    const [fileDelivery] = await send(fileMsg);
    const groupMsg = franked(alice, utf8('group insult'));
    const g = await inject(relay.app, alice.signer, {
      method: 'POST',
      url: '/v1/messages/fanout',
      json: {
        id: 'g1',
        envelope: toBase64Url(utf8('group ciphertext')),
        frankingTag: toBase64Url(groupMsg.tag),
        recipients: [bob, bob2, carol].map((d) => ({ account: d.id, deviceId: d.device.deviceId })),
      },
    });
    expect(g.statusCode).toBe(200);
    const inbox = async (d: TestDevice) =>
      json<{ messages: Delivered[] }>(await inject(relay.app, d.signer, { method: 'GET', url: '/v1/messages' })).messages;
    const [bobGroup] = await inbox(bob);
    const [carolGroup] = await inbox(carol);
    expect(bobGroup?.delivery?.envelopeId).not.toBe(carolGroup?.delivery?.envelopeId);

    const ok = await file(
      report([itemOf(bobGroup?.delivery as Delivery, groupMsg, 1), itemOf(fileDelivery?.delivery as Delivery, fileMsg, 1, 2)]),
    );
    expect(ok.statusCode).toBe(202);
    const carolOk = await file(report([itemOf(carolGroup?.delivery as Delivery, groupMsg, 1)]), carol);
    expect(carolOk.statusCode).toBe(202);
    // Altering the file's pointer breaks the tag.
    const swapped = {
      ...fileMsg,
      plaintext: encodeCbor([2, 'file', encodeCbor([1, new Uint8Array(16), new Uint8Array(32), b.sha256(utf8('other')), 8])]),
    };
    const bad = await file(report([itemOf(fileDelivery?.delivery as Delivery, swapped, 1)]));
    expect(codeOf(bad)).toBe('TAG_MISMATCH');
  });

  it('refuses altered content, another recipient, a moved device or time, foreign context and sealed items, with their codes', async () => {
    await setup();
    const m = franked(alice, utf8('original'));
    const [toBob] = await send(m);
    const d = toBob?.delivery as Delivery;
    const item = itemOf(d, m, 1);
    const expectCode = async (r: Awaited<ReturnType<typeof file>>, status: number, code: string) => {
      expect({ status: r.statusCode, code: codeOf(r) }).toEqual({ status, code });
    };
    await expectCode(await file(report([{ ...item, plaintext: utf8('edited') }])), 422, 'TAG_MISMATCH');
    // Carol presents Bob's envelope as her own: the frank names Bob's account.
    await expectCode(await file(report([item]), carol), 422, 'FRANK_INVALID');
    // Bob claims it reached his other device, or another time.
    await expectCode(await file(report([{ ...item, recipientDevice: 2 }])), 422, 'FRANK_INVALID');
    await expectCode(await file(report([{ ...item, acceptedAt: be8(d.acceptedAt + 1) }])), 422, 'FRANK_INVALID');
    // A sender that is not the one the relay saw.
    const mallory = franked(carol, utf8('original'));
    await expectCode(await file(report([{ ...item, sender: mallory.sender, frankingKey: mallory.fk }])), 422, 'FRANK_INVALID');
    // Context from another sender (Carol's message to Bob) cannot ride along.
    const carolMsg = { ...franked(carol, utf8('hi')) };
    const c = await inject(relay.app, carol.signer, {
      method: 'POST',
      url: '/v1/messages',
      json: {
        messages: [bob, bob2].map((x) => ({
          account: x.id,
          deviceId: x.device.deviceId,
          id: 'c1',
          envelope: toBase64Url(utf8('c')),
          frankingTag: toBase64Url(carolMsg.tag),
        })),
      },
    });
    expect(c.statusCode).toBe(200);
    const carols = json<{ messages: Delivered[] }>(await inject(relay.app, bob.signer, { method: 'GET', url: '/v1/messages' })).messages;
    const fromCarol = carols.find((x) => x.sender.account === carol.id)?.delivery as Delivery;
    await expectCode(await file(report([item, itemOf(fromCarol, carolMsg, 1, 2)])), 422, 'CONTEXT_MISMATCH');
    // A sealed item (moderator token) needs the moderation service's keys.
    const token = {
      keyId: 0,
      expiresAt: be8(1),
      ephemeralKey: new Uint8Array(32),
      sealedSender: new Uint8Array(52),
      signature: new Uint8Array(64),
    };
    await expectCode(await file(report([{ ...item, token, attestation: new Uint8Array(64) }])), 422, 'TOKEN_INVALID_IN_REPORT');
    // Not a report at all.
    const junk = await inject(relay.app, bob.signer, { method: 'POST', url: '/v2/reports', json: { report: toBase64Url(utf8('junk')) } });
    expect(junk.statusCode).toBe(400);
    // Nothing refused was queued, and the genuine report still goes through afterwards.
    expect(await relay.app.relay.storage.listReports(0, 10)).toHaveLength(0);
    expect((await file(report([item]))).statusCode).toBe(202);
    // Every outcome is counted by its code, and only by it.
    const counted = Object.fromEntries(
      (await relay.app.relay.metrics.reports.get()).values.map((v) => [String(v.labels['outcome']), v.value]),
    );
    expect(counted).toEqual({
      TAG_MISMATCH: 1,
      FRANK_INVALID: 4,
      CONTEXT_MISMATCH: 1,
      TOKEN_INVALID_IN_REPORT: 1,
      MALFORMED: 1,
      queued: 1,
    });
  });

  it.runIf(backend.name === 'SQLite')('a mutated report is refused with a typed code, never a 5xx (bounded: 60 mutations)', async () => {
    await setup();
    const m = franked(alice, utf8('mutate me'));
    const [toBob] = await send(m);
    const good = encodeReport(report([itemOf(toBob?.delivery as Delivery, m, 1)]));
    const statuses = new Set<number>();
    for (let i = 0; i < 60; i++) {
      const bad = new Uint8Array(good);
      const at = (i * 7919) % bad.length;
      bad[at] = (bad[at] as number) ^ (1 << (i % 8));
      const r = await inject(relay.app, bob.signer, { method: 'POST', url: '/v2/reports', json: { report: toBase64Url(bad) } });
      statuses.add(r.statusCode);
      expect(r.statusCode, r.body).toBeLessThan(500);
      if (r.statusCode !== 202) expect(codeOf(r)).toMatch(/^[A-Z_]+$/);
    }
    // Only the reporter's own words (reason, comment) are outside the franks: a change there may still be queued.
    expect([...statuses].every((x) => [202, 400, 409, 413, 422].includes(x))).toBe(true);
  });

  it('a destroyed frank key ends the proofs of its period (FRANK_KEY_EXPIRED), and the sweeper destroys it', async () => {
    await setup();
    const m = franked(alice, utf8('old message'));
    const [toBob] = await send(m);
    const d = toBob?.delivery as Delivery;
    const keyId = d.frankKeyId;
    expect(await relay.app.relay.storage.findFrankKey(keyId)).toHaveLength(32);
    // The last day of retention: still provable (checked, not filed, by a duplicate-free fresh report).
    relay.clock.now = (keyId + 1) * FRANK_KEY_PERIOD_MS + FRANK_KEY_RETENTION_MS - 1;
    await sweepOnce(relay.app);
    expect(await relay.app.relay.storage.findFrankKey(keyId)).toHaveLength(32);
    relay.clock.now += 1;
    // Refused from the first moment of expiry, even before the sweep ran...
    const early = await file(report([itemOf(d, m, 1)]));
    expect(codeOf(early)).toBe('FRANK_KEY_EXPIRED');
    await sweepOnce(relay.app);
    // ...and the key is gone from storage after it.
    expect(await relay.app.relay.storage.findFrankKey(keyId)).toBeUndefined();
    const late = await file(report([itemOf(d, m, 1)]));
    expect({ status: late.statusCode, code: codeOf(late) }).toEqual({ status: 422, code: 'FRANK_KEY_EXPIRED' });
  });

  it(`limits a reporter account to ${REPORTS_PER_DAY} queued reports a day (REPORT_BUDGET_EXCEEDED)`, async () => {
    await setup();
    const items: ReportItem[] = [];
    for (let i = 0; i <= REPORTS_PER_DAY; i++) {
      const m = franked(alice, utf8(`spam ${i}`));
      // Carol has one device: the fewest requests per message.
      const [toCarol] = await send(m, relay.app, [carol]);
      items.push(itemOf(toCarol?.delivery as Delivery, m, 1));
    }
    for (const item of items.slice(0, REPORTS_PER_DAY)) expect((await file(report([item]), carol)).statusCode).toBe(202);
    const over = await file(report([items[REPORTS_PER_DAY] as ReportItem]), carol);
    expect({ status: over.statusCode, code: codeOf(over) }).toEqual({ status: 429, code: 'REPORT_BUDGET_EXCEEDED' });
    // A day later the budget is back.
    relay.clock.now += 24 * 60 * 60 * 1000 + 1;
    expect((await file(report([items[REPORTS_PER_DAY] as ReportItem]), carol)).statusCode).toBe(202);
  });

  it('the websocket delivers the same record, and a report built from it verifies', async () => {
    await setup();
    const listening = await listeningRelay({}, { storage: await openStorage() });
    extra.push(listening);
    for (const d of [alice, bob, bob2]) await register(listening.app, d);
    const got: ReceivedEnvelope[] = [];
    const receiver = listening.client(bob.signer).connect({ onEnvelope: (e) => void got.push(e) });
    receiver.start();
    try {
      const m = franked(alice, utf8('pushed'));
      await listening
        .client(alice.signer)
        .send([bob, bob2].map((d) => ({ accountKey: d.account.publicKey, deviceId: d.device.deviceId, id: 'w1', envelope: utf8('c') })));
      // The test client has no franking field: send the tagged envelopes signed by hand.
      const r = await inject(listening.app, alice.signer, {
        method: 'POST',
        url: '/v1/messages',
        json: {
          messages: [bob, bob2].map((d) => ({
            account: d.id,
            deviceId: d.device.deviceId,
            id: 'w2',
            envelope: toBase64Url(utf8('c2')),
            frankingTag: toBase64Url(m.tag),
          })),
        },
      });
      expect(r.statusCode).toBe(200);
      await eventually(() => got.some((e) => e.id === 'w2'));
      const pushed = got.find((e) => e.id === 'w2');
      expect(got.find((e) => e.id === 'w1')?.delivery).toBeUndefined();
      const d = pushed?.delivery as Delivery;
      expect(d.frankingTag).toBe(toBase64Url(m.tag));
      const filed = await file(report([itemOf(d, m, 1)]), bob, listening.app);
      expect(filed.statusCode).toBe(202);
    } finally {
      receiver.stop();
    }
  });

  it.runIf(backend.name === 'PostgreSQL')('two relay processes on one database agree on the frank key', async () => {
    await setup();
    const other = await testRelay({}, { clock: true, storage: await openStorage() });
    extra.push(other);
    other.clock.now = relay.clock.now;
    // Both make the period's key at once: one insert wins, both use it.
    const keyId = Math.floor(relay.clock.now / FRANK_KEY_PERIOD_MS);
    const [k1, k2] = await Promise.all([
      relay.app.relay.frankKeys.forAccept(relay.clock.now),
      other.app.relay.frankKeys.forAccept(other.clock.now),
    ]);
    expect(k1.keyId).toBe(keyId);
    expect(Buffer.from(k1.key).equals(Buffer.from(k2.key))).toBe(true);
    // Accepted by one process, reported through the other.
    const m = franked(alice, utf8('across processes'));
    const [toBob] = await send(m, other.app);
    // The same report filed on both processes at once: the database queues exactly one.
    const same = report([itemOf(toBob?.delivery as Delivery, m, 1)]);
    const both = await Promise.all([file(same), file(same, bob, other.app)]);
    expect(both.map((r) => r.statusCode).sort()).toEqual([202, 409]);
    expect(await relay.app.relay.storage.listReports(0, 10)).toHaveLength(1);
  });
});

describe('the moderator tool: parley-relay reports list|show|verify', () => {
  it('lists, shows and re-verifies queued reports with the relay storage, and stops verifying once the key is destroyed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-reports-cli-'));
    try {
      const relay = await testRelay({}, { clock: true, storage: new SqliteStorage({ path: join(dir, 'relay.sqlite') }) });
      const alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
      const bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
      for (const d of [alice, bob]) await register(relay.app, d);
      const m = franked(alice, utf8('a threat, in words'));
      const sent = await inject(relay.app, alice.signer, {
        method: 'POST',
        url: '/v1/messages',
        json: { messages: [{ account: bob.id, deviceId: 1, id: 'x', envelope: toBase64Url(utf8('c')), frankingTag: toBase64Url(m.tag) }] },
      });
      expect(sent.statusCode).toBe(200);
      const [delivered] = json<{ messages: Delivered[] }>(
        await inject(relay.app, bob.signer, { method: 'GET', url: '/v1/messages' }),
      ).messages;
      const d = delivered?.delivery as Delivery;
      const filed = await inject(relay.app, bob.signer, {
        method: 'POST',
        url: '/v2/reports',
        json: { report: toBase64Url(encodeReport(report([itemOf(d, m, 1)]))) },
      });
      expect(filed.statusCode).toBe(202);
      const now = relay.clock.now;
      await relay.close();

      const config = withDefaults({ dataDir: dir, logLevel: 'silent' });
      const run = async (words: string[], at = now) => {
        const lines: string[] = [];
        const status = await reportsCommand(config, words, (l) => lines.push(l), at);
        return { status, text: lines.join('\n') };
      };
      const list = await run(['list']);
      expect(list.status).toBe(0);
      expect(list.text).toContain('#1 ');
      expect(list.text).toContain(`envelope=${Buffer.from(fromB64(d.envelopeId)).toString('hex')}`);
      expect(list.text).toContain('1 report queued');
      const show = await run(['show', '1']);
      expect(show).toMatchObject({ status: 0 });
      expect(show.text).toContain('a threat, in words');
      expect(show.text).toContain(`${alice.id}:1`);
      expect(show.text).toContain('verdict     verified');
      expect(await run(['verify'])).toEqual({ status: 0, text: '#1 verified' });
      // After the retention the key is gone and the report no longer verifies.
      const later = (d.frankKeyId + 1) * FRANK_KEY_PERIOD_MS + FRANK_KEY_RETENTION_MS;
      expect(await run(['verify', '1'], later)).toEqual({ status: 3, text: '#1 REFUSED FRANK_KEY_EXPIRED (item 0)' });
      expect((await run(['show', '9'])).status).toBe(3);
      await expect(run(['delete', '1'])).rejects.toThrow(/usage/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The file check of a report costs the relay a blob read and an AEAD open
// per chunk (spec/14-franking.md §6.1), up to MAX_REPORT_BLOB_BYTES of work
// per report. Refused reports are not queued and do not spend
// REPORTS_PER_DAY, so before this budget one account could repeat a report
// whose pointer names a real blob with a wrong digest and make the relay
// read and decrypt the whole blob again on every request, without end.
// Now every report with files spends its check cost from a per-account
// budget (`reportCheckBytesPerDayPerAccount`, spec/17 §5 step 3a) before
// any blob byte is read; a queued report gives its cost back (queued
// reports are bounded by REPORTS_PER_DAY); past the budget the answer is
// 429 RATE_LIMITED, and nothing is read.
import { type AbuseReport, type ReportItem, attachment, defaultProvider, encodeCbor, encodeReport } from '@parley/core';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PostgresStorage } from '../src/storage/postgres.ts';
import type { RelayStorage } from '../src/storage/types.ts';
import { type TestDevice, inject, json, listeningRelay, makeDevice, register, toBase64Url } from './support.ts';
import { pointerOf, sealBlob, sendFranked as sendFrankedItem } from './support/franked-report.ts';

const b = defaultProvider().backend;
const CHUNK = 64;
/** The test budget: room for a few refused checks of the small file below. */
const BUDGET = 32 * 1024;

const fileContent = (pointer: Uint8Array) => encodeCbor([1, 2, b.randomBytes(16), new Uint8Array(8), 0, null, [pointer, ''], null]);
const textContent = () => encodeCbor([1, 1, b.randomBytes(16), new Uint8Array(8), 0, null, ['hi'], null]);

let relay: Awaited<ReturnType<typeof listeningRelay>>;
let alice: TestDevice;
let bob: TestDevice;
let carol: TestDevice;
let sends = 0;
/** Blob bytes the relay's store handed to the report check. */
let bytesRead = 0;

const PG_URL = process.env.PARLEY_TEST_POSTGRES_URL;
if (!PG_URL && process.env['CI'] === 'true') throw new Error('CI=true but PARLEY_TEST_POSTGRES_URL is not set');
const admin = PG_URL ? new pg.Pool({ connectionString: PG_URL, max: 1 }) : undefined;
afterAll(() => admin?.end());
/** The budget lives in memory on SQLite and in the database on PostgreSQL (shared by every relay process). */
const backends: [string, () => Promise<{ storage?: RelayStorage; drop(): Promise<void> }>][] = [
  ['SQLite', async () => ({ drop: async () => {} })],
];
if (PG_URL) {
  backends.push([
    'PostgreSQL',
    async () => {
      const schema = `parley_rcb_${randomBytes(5).toString('hex')}`;
      const storage = await PostgresStorage.open({ connectionString: PG_URL, schema, poolSize: 2 });
      return { storage, drop: async () => void (await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)) };
    },
  ]);
}
let drop: () => Promise<void> = async () => {};

async function start(open: () => Promise<{ storage?: RelayStorage; drop(): Promise<void> }>): Promise<void> {
  const opened = await open();
  drop = opened.drop;
  relay = await listeningRelay(
    { rateLimits: { reportCheckBytesPerDayPerAccount: BUDGET } },
    opened.storage ? { storage: opened.storage } : {},
  );
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  carol = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  for (const d of [alice, bob, carol]) await register(relay.app, d);
  sends = 0;
  bytesRead = 0;
  const blobs = relay.app.relay.blobs;
  const read = blobs.read.bind(blobs);
  vi.spyOn(blobs, 'read').mockImplementation((...args: Parameters<typeof read>) => {
    const source = read(...args);
    return Readable.from(
      (async function* () {
        for await (const piece of source as AsyncIterable<Uint8Array>) {
          bytesRead += piece.length;
          yield piece;
        }
      })(),
    );
  });
}
afterEach(async () => {
  vi.restoreAllMocks();
  await relay?.close();
  await drop();
});

async function upload(bytes: Uint8Array): Promise<string> {
  const client = relay.client(alice.signer);
  const { id } = await client.createAttachment(bytes.length);
  await client.uploadAttachment(id, bytes);
  return id;
}

/** Alice franks and sends `plaintext` to `to`; returns the report item `to` holds for it. */
const sendFranked = (to: TestDevice, plaintext: Uint8Array, files: number): Promise<ReportItem> =>
  sendFrankedItem(relay.app, alice, to, plaintext, {
    id: `f${++sends}`,
    attachments: files === 0 ? [] : [{ pointerIndex: 0, blob: null }],
  });

const report = (items: ReportItem[]): AbuseReport => ({ reason: 4, comment: '', items });
const post = (who: TestDevice, r: AbuseReport) =>
  inject(relay.app, who.signer, { method: 'POST', url: '/v2/reports', json: { report: toBase64Url(encodeReport(r)) } });
const outcome = (r: { statusCode: number; body: string }) => ({ status: r.statusCode, code: json<{ code?: string }>(r).code });

describe.each(backends)('the per-account budget of report file checks (%s)', (_name, open) => {
  beforeEach(() => start(open));

  it('a refused file report repeated 12 times reads the blob only until the budget is spent, then is 429 unread', async () => {
    const photo = sealBlob(b.randomBytes(300), CHUNK);
    const id = await upload(photo.blob);
    // The sender names a real blob with a digest that is not its own: every check reads all of it, then refuses.
    const item = await sendFranked(bob, fileContent(pointerOf(id, photo, b.randomBytes(32))), 1);
    const cost = attachment.ciphertextSizeOf(300, CHUNK) + attachment.chunkCountOf(300, CHUNK) * 1024;
    const outcomes: string[] = [];
    for (let i = 0; i < 12; i++) outcomes.push(JSON.stringify(outcome(await post(bob, report([item])))));
    const refused = outcomes.filter((o) => o === JSON.stringify({ status: 422, code: 'ATTACHMENT_MISMATCH' })).length;
    const limited = outcomes.filter((o) => o === JSON.stringify({ status: 429, code: 'RATE_LIMITED' })).length;
    expect(refused).toBe(Math.floor(BUDGET / cost));
    expect(limited).toBe(12 - refused);
    // Only the checks the budget paid for read the blob.
    expect(bytesRead).toBe(refused * photo.blob.length);

    // The budget is the reporter account's own: Carol's genuine file report goes through.
    const good = await sendFranked(carol, fileContent(pointerOf(id, photo)), 1);
    expect(outcome(await post(carol, report([good])))).toEqual({ status: 202, code: undefined });
    // And a report without files costs nothing: Bob's text report is still queued.
    const text = await sendFranked(bob, textContent(), 0);
    expect(outcome(await post(bob, report([text])))).toEqual({ status: 202, code: undefined });
  });

  it('the 429 says when to retry, and carries no report byte', async () => {
    const photo = sealBlob(b.randomBytes(300), CHUNK);
    const id = await upload(photo.blob);
    const item = await sendFranked(bob, fileContent(pointerOf(id, photo, b.randomBytes(32))), 1);
    let last = await post(bob, report([item]));
    for (let i = 0; i < 12 && last.statusCode !== 429; i++) last = await post(bob, report([item]));
    expect(last.statusCode).toBe(429);
    const body = json<{ code: string; details?: { retryAfterSeconds?: number } }>(last);
    expect(body.details?.retryAfterSeconds).toBeGreaterThan(0);
    expect(last.body).not.toContain(toBase64Url(item.frankingKey));
  });

  it('queued file reports give their cost back: more genuine file reports than the budget holds all go through', async () => {
    const photo = sealBlob(b.randomBytes(300), CHUNK);
    const id = await upload(photo.blob);
    const cost = attachment.ciphertextSizeOf(300, CHUNK) + attachment.chunkCountOf(300, CHUNK) * 1024;
    const n = Math.floor(BUDGET / cost) + 3;
    for (let i = 0; i < n; i++) {
      const item = await sendFranked(bob, fileContent(pointerOf(id, photo)), 1);
      expect(outcome(await post(bob, report([item]))), `report ${i}`).toEqual({ status: 202, code: undefined });
    }
  });
});

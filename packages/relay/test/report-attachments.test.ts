// Reported files (spec/14-franking.md §6 step 5, spec/17 §5.2): a report of
// a file message fixes one file. The franked plaintext (a Content) carries
// the attachment pointer; the relay checks the blob (sent with the report,
// or its own stored copy fetched by the pointer's id) against the pointer:
// exact length, header commitment to the pointer's key, every chunk tag,
// SHA-256 digest. A swapped blob, a blob under another key, a stored blob
// that is not the pointer's and a report that leaves the file out are
// refused with ATTACHMENT_MISMATCH; a blob the relay no longer holds with
// ATTACHMENT_UNAVAILABLE. The moderator tool re-runs the same check.
//
// The blobs are built from core's format pieces (support/franked-report.ts;
// the relay tests do not import the client, so that a shared mistake cannot hide).
import { type AbuseReport, type ReportItem, defaultProvider, encodeCbor, encodeReport } from '@parley/core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reportsCommand } from '../src/cli/reports.ts';
import { withDefaults } from '../src/config.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { type TestDevice, type TestRelayClient, inject, json, listeningRelay, makeDevice, register, toBase64Url } from './support.ts';
import { type Sealed, pointerOf as pointerFields, sealBlob, sendFranked as sendFrankedItem } from './support/franked-report.ts';

const b = defaultProvider().backend;
const CHUNK = 64;

const pointerOf = (id: string, s: Sealed, digest = s.digest) => pointerFields(id, s, digest, 'photo.jpg');
/** A Content v1 file message (10 §3): [1, 2, messageId, sentAt, timer, group, [pointer, caption], deviceList]. */
const fileContent = (pointer: Uint8Array) => encodeCbor([1, 2, b.randomBytes(16), new Uint8Array(8), 0, null, [pointer, 'look'], null]);

let relay: Awaited<ReturnType<typeof listeningRelay>>;
/** The relay's data dir (its SQLite file and attachments/), so the moderator tool can open the same storage. */
let dataDir: string;
let alice: TestDevice;
let bob: TestDevice;
let aliceClient: TestRelayClient;
let sends = 0;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'parley-report-files-'));
  relay = await listeningRelay({ dataDir }, { storage: new SqliteStorage({ path: join(dataDir, 'relay.sqlite') }) });
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  for (const d of [alice, bob]) await register(relay.app, d);
  aliceClient = relay.client(alice.signer);
});
afterEach(async () => {
  await relay.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function upload(bytes: Uint8Array): Promise<string> {
  const { id } = await aliceClient.createAttachment(bytes.length);
  await aliceClient.uploadAttachment(id, bytes);
  return id;
}

/** Alice franks and sends `plaintext` to Bob; returns Bob's report item for it, listing the file's one pointer. */
const sendFranked = (plaintext: Uint8Array): Promise<ReportItem> =>
  sendFrankedItem(relay.app, alice, bob, plaintext, { id: `f${++sends}`, attachments: [{ pointerIndex: 0, blob: null }] });

const fileReport = (items: ReportItem[]): AbuseReport => ({ reason: 4, comment: 'explicit image', items });
const post = (r: AbuseReport) =>
  inject(relay.app, bob.signer, { method: 'POST', url: '/v2/reports', json: { report: toBase64Url(encodeReport(r)) } });
const outcome = (r: { statusCode: number; body: string }) => ({ status: r.statusCode, code: json<{ code?: string }>(r).code });

describe('reports of file messages', () => {
  it('a file report verifies against the stored blob and against a blob sent with it, and the moderator tool agrees', async () => {
    const photo = sealBlob(b.randomBytes(300), CHUNK);
    const id = await upload(photo.blob);
    const byId = await sendFranked(fileContent(pointerOf(id, photo)));
    expect(outcome(await post(fileReport([byId])))).toEqual({ status: 202, code: undefined });
    const inline = await sendFranked(fileContent(pointerOf(id, photo)));
    const withBlob = { ...inline, attachments: [{ pointerIndex: 0, blob: photo.blob }] };
    expect((await post(fileReport([withBlob]))).statusCode).toBe(202);
  });

  it('refuses a swapped blob sent with the report (another file of the same sender) with ATTACHMENT_MISMATCH', async () => {
    const photo = sealBlob(b.randomBytes(300), CHUNK);
    const other = sealBlob(b.randomBytes(300), CHUNK);
    const id = await upload(photo.blob);
    const item = await sendFranked(fileContent(pointerOf(id, photo)));
    const swapped = { ...item, attachments: [{ pointerIndex: 0, blob: other.blob }] };
    expect(outcome(await post(fileReport([swapped])))).toEqual({ status: 422, code: 'ATTACHMENT_MISMATCH' });
    // Nothing was queued: the genuine report still goes through afterwards.
    expect((await post(fileReport([item]))).statusCode).toBe(202);
  });

  it("refuses a stored blob that is not the pointer's, and one that opens under another key than the pointer's", async () => {
    const photo = sealBlob(b.randomBytes(300), CHUNK);
    const decoy = sealBlob(b.randomBytes(300), CHUNK);
    // The sender uploads the decoy under the id the pointer names, with the real file's digest.
    const id = await upload(decoy.blob);
    const item = await sendFranked(fileContent(pointerOf(id, photo)));
    expect(outcome(await post(fileReport([item])))).toEqual({ status: 422, code: 'ATTACHMENT_MISMATCH' });
    // The digest matches the stored blob, but the blob is sealed under another key than the pointer's:
    // the receiver could not open it, and a moderator must not be shown it as this message's file.
    const foreignKey = { ...decoy, key: b.randomBytes(32) };
    const id2 = await upload(decoy.blob);
    const item2 = await sendFranked(fileContent(pointerOf(id2, foreignKey)));
    expect(outcome(await post(fileReport([item2])))).toEqual({ status: 422, code: 'ATTACHMENT_MISMATCH' });
  });

  it('refuses a report that leaves the file out or names a pointer the message does not carry', async () => {
    const photo = sealBlob(b.randomBytes(100), CHUNK);
    const id = await upload(photo.blob);
    const item = await sendFranked(fileContent(pointerOf(id, photo)));
    expect(outcome(await post(fileReport([{ ...item, attachments: [] }])))).toEqual({ status: 422, code: 'ATTACHMENT_MISMATCH' });
    const extra = [...item.attachments, { pointerIndex: 1, blob: null }];
    expect(outcome(await post(fileReport([{ ...item, attachments: extra }])))).toEqual({ status: 422, code: 'ATTACHMENT_MISMATCH' });
    // A text message has no file to list.
    const text = await sendFranked(encodeCbor([1, 1, b.randomBytes(16), new Uint8Array(8), 0, null, ['hi'], null]));
    expect(outcome(await post(fileReport([text])))).toEqual({ status: 422, code: 'ATTACHMENT_MISMATCH' });
    expect((await post(fileReport([{ ...text, attachments: [] }]))).statusCode).toBe(202);
  });

  it('a file the relay no longer stores is ATTACHMENT_UNAVAILABLE unless the reporter sends the blob', async () => {
    const photo = sealBlob(b.randomBytes(200), CHUNK);
    const id = await upload(photo.blob);
    await aliceClient.deleteAttachment(id);
    const item = await sendFranked(fileContent(pointerOf(id, photo)));
    expect(outcome(await post(fileReport([item])))).toEqual({ status: 422, code: 'ATTACHMENT_UNAVAILABLE' });
    const withBlob = { ...item, attachments: [{ pointerIndex: 0, blob: photo.blob }] };
    expect((await post(fileReport([withBlob]))).statusCode).toBe(202);
  });
});

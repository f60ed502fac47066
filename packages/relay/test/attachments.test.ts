// Attachments: chunked upload, resume after a dropped connection, range
// downloads, ownership (same 404 for foreign and unknown), limits, expiry.
// spec/09-relay.md §4.5.
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRange } from '../src/attachments/range.ts';
import { sweepOnce } from '../src/sweeper.ts';
import {
  HOST,
  type TestRelayClient,
  type TestDevice,
  eventuallyAsync,
  isRelayError,
  listeningRelay,
  makeDevice,
  register,
  signRequest,
} from './support.ts';

let relay: Awaited<ReturnType<typeof listeningRelay>>;
let alice: TestDevice;
let bob: TestDevice;
let a: TestRelayClient;
let b: TestRelayClient;
const blob = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31 + 7) & 0xff);

beforeEach(async () => {
  relay = await listeningRelay({ limits: { maxAttachmentBytes: 300_000, maxUploadChunkBytes: 64 * 1024, maxPendingUploadsPerDevice: 2 } });
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(relay.app, alice);
  await register(relay.app, bob);
  a = relay.client(alice.signer);
  b = relay.client(bob.signer);
});
afterEach(() => relay.close());

describe('upload and download', () => {
  it('uploads in chunks and downloads the same bytes, whole or by range', async () => {
    const created = await a.createAttachment(blob.length);
    expect(created).toMatchObject({ size: blob.length, offset: 0, complete: false });
    const progress: number[] = [];
    const done = await a.uploadAttachment(created.id, blob, { chunkBytes: 64 * 1024, onProgress: (p) => progress.push(p.offset) });
    expect(done.complete).toBe(true);
    expect(progress).toEqual([65536, 131072, 196608, 200000]);

    const whole = await b.downloadAttachment(created.id);
    expect(whole.status).toBe(200);
    expect(whole.bytes).toEqual(blob);
    const middle = await b.downloadAttachment(created.id, { start: 1000, end: 1999 });
    expect(middle).toMatchObject({ status: 206, start: 1000, size: blob.length });
    expect(middle.bytes).toEqual(blob.subarray(1000, 2000));
    const tail = await b.downloadAttachment(created.id, { start: 199_990 });
    expect(tail.bytes).toEqual(blob.subarray(199_990));
  });

  it('a range past the end is 416 with the size', async () => {
    const { id } = await a.createAttachment(10);
    await a.uploadChunk(id, 0, new Uint8Array(10));
    const error = await b.downloadAttachment(id, { start: 10 }).catch((e) => e);
    expect(error).toMatchObject({ status: 416, code: 'RANGE_NOT_SATISFIABLE' });
  });

  it('resumes after a dropped connection from the bytes that arrived', async () => {
    const { id } = await a.createAttachment(blob.length);
    const port = new URL(relay.url).port;
    const url = `/v1/attachments/${id}?offset=0`;
    const { authorization } = signRequest(alice.signer, { method: 'PATCH', url, unsignedBody: true });
    await new Promise<void>((resolve) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'PATCH',
        path: url,
        headers: { host: HOST, authorization, 'content-type': 'application/octet-stream', 'content-length': String(64 * 1024) },
      });
      req.on('error', () => resolve());
      req.write(blob.subarray(0, 20_000), () => setTimeout(() => req.destroy(), 100));
      req.on('close', () => resolve());
    });
    // The relay keeps the bytes it received and says where to continue.
    await eventuallyAsync(async () => (await a.attachmentStatus(id)).offset === 20_000);
    const done = await a.uploadAttachment(id, blob, { chunkBytes: 64 * 1024 });
    expect(done.complete).toBe(true);
    expect((await b.downloadAttachment(id)).bytes).toEqual(blob);
  });

  it('refuses a chunk at the wrong offset with the offset to use', async () => {
    const { id } = await a.createAttachment(100);
    await a.uploadChunk(id, 0, new Uint8Array(40));
    const error = await a.uploadChunk(id, 0, new Uint8Array(40)).catch((e) => e);
    expect(error).toMatchObject({ status: 409, code: 'OFFSET_MISMATCH', details: { offset: 40 } });
  });

  it('refuses chunks past the declared size, attachments over the limit, and too many unfinished uploads', async () => {
    const { id } = await a.createAttachment(10);
    expect(await a.uploadChunk(id, 0, new Uint8Array(11)).catch((e) => e)).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
    expect(await a.createAttachment(300_001).catch((e) => e)).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
    await a.createAttachment(5);
    expect(await a.createAttachment(5).catch((e) => e)).toMatchObject({ status: 409, code: 'TOO_MANY_UPLOADS' });
  });
});

describe('ownership and existence', () => {
  it("another device's upload, an unknown id and an unfinished attachment all look the same (404)", async () => {
    const { id } = await a.createAttachment(10);
    const unknownId = 'AAAAAAAAAAAAAAAAAAAAAA';
    const answers = await Promise.all([
      b.attachmentStatus(id).catch((e) => e),
      a.attachmentStatus(unknownId).catch((e) => e),
      b.uploadChunk(id, 0, new Uint8Array(10)).catch((e) => e),
      b.downloadAttachment(id).catch((e) => e),
      b.downloadAttachment(unknownId).catch((e) => e),
      b.deleteAttachment(id).catch((e) => e),
    ]);
    for (const e of answers) expect(isRelayError(e, 'NOT_FOUND')).toBe(true);
  });

  it('the uploader deletes; expired attachments are swept with their files', async () => {
    await relay.close();
    relay = await listeningRelay({ attachmentTtlSeconds: 60, uploadTtlSeconds: 30 }, { clock: true });
    await register(relay.app, alice);
    a = relay.client(alice.signer);
    const kept = await a.createAttachment(4);
    await a.uploadChunk(kept.id, 0, new Uint8Array(4));
    const unfinished = await a.createAttachment(4);
    const file = (id: string) => join(relay.dir, 'attachments', id);
    expect(existsSync(file(kept.id))).toBe(true);

    relay.clock.now += 31_000;
    expect((await sweepOnce(relay.app)).attachments).toEqual([unfinished.id]);
    expect(existsSync(file(unfinished.id))).toBe(false);
    relay.clock.now += 30_000;
    expect((await sweepOnce(relay.app)).attachments).toEqual([kept.id]);
    expect(existsSync(file(kept.id))).toBe(false);
  });
});

describe('Range header parsing', () => {
  it.each([
    [undefined, { kind: 'full' }],
    ['bytes=0-9', { kind: 'partial', start: 0, end: 9 }],
    ['bytes=5-', { kind: 'partial', start: 5, end: 99 }],
    ['bytes=-10', { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-1000', { kind: 'partial', start: 0, end: 99 }],
    ['bytes=90-1000', { kind: 'partial', start: 90, end: 99 }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=9-5', { kind: 'full' }],
    ['bytes=0-1,5-6', { kind: 'full' }],
    ['items=0-1', { kind: 'full' }],
  ])('%s', (header, expected) => {
    expect(parseRange(header, 100)).toEqual(expected);
  });
});

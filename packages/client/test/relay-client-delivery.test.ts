// Delivery records (spec/17-franking-and-reports.md §4) in the relay client:
// decoded from the real relay on both delivery paths (HTTP fetch and the
// websocket), checked for form, and a malformed one never blocks the mailbox.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Account, ENVELOPE_ID_BYTES, PreKeyStore } from '@parley/core';
import { buildApp } from '@parley/relay';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BAD_DELIVERY_RECORD, decodeDelivered, decodeDeliveryRecord } from '../src/relay-client/decode.ts';
import {
  MailboxReceiver,
  type ReceivedEnvelope,
  RelayClient,
  type WebSocketLike,
  deviceSigner,
  preKeysOf,
  toBase64Url,
} from '../src/relay-client/index.ts';
import WebSocket from 'ws';

let dataDir: string;
let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'parley-delivery-'));
  app = await buildApp({ config: { dataDir, logLevel: 'silent' }, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  port = typeof address === 'object' && address ? address.port : 0;
});
afterAll(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function registered() {
  const account = Account.generate();
  const device = account.createDevice(1);
  const prekeys = PreKeyStore.generate(device, { oneTimePreKeys: 1, kemPreKeys: 1 });
  const client = new RelayClient({ baseUrl: `http://127.0.0.1:${port}`, signer: deviceSigner(device), WebSocket: WebSocket as never });
  await client.registerDevice(device.certificate, preKeysOf(prekeys));
  return { account, client };
}

const good = () => ({
  envelopeId: toBase64Url(new Uint8Array(16).fill(1)),
  acceptedAt: 1_780_000_000_000,
  frankKeyId: 20_601,
  frank: toBase64Url(new Uint8Array(32).fill(2)),
  frankingTag: toBase64Url(new Uint8Array(32).fill(3)),
});

const wire = (delivery: unknown) => ({
  seq: 7,
  sender: { account: toBase64Url(new Uint8Array(32).fill(9)), deviceId: 1 },
  id: 'm1',
  serverTimestamp: 1,
  expiresAt: 2,
  envelope: toBase64Url(new Uint8Array([1, 2, 3])),
  delivery: delivery as never,
});

describe('delivery record decoding', () => {
  it('decodes every field of a well-formed record', () => {
    const d = decodeDeliveryRecord(good());
    expect(d.envelopeId).toEqual(new Uint8Array(16).fill(1));
    expect(d.acceptedAt).toBe(1_780_000_000_000);
    expect(d.frankKeyId).toBe(20_601);
    expect(d.frank).toEqual(new Uint8Array(32).fill(2));
    expect(d.frankingTag).toEqual(new Uint8Array(32).fill(3));
  });

  const cases: [string, unknown][] = [
    ['not an object', 'x'],
    ['an array', []],
    ['a short envelope id', { ...good(), envelopeId: toBase64Url(new Uint8Array(15)) }],
    ['a long tag', { ...good(), frankingTag: toBase64Url(new Uint8Array(33)) }],
    ['a tag with padding', { ...good(), frankingTag: `${toBase64Url(new Uint8Array(31))}=` }],
    ['a non-canonical frank', { ...good(), frank: `${toBase64Url(new Uint8Array(32)).slice(0, 42)}B` }],
    ['a frank that is a number', { ...good(), frank: 5 }],
    ['a missing tag', { ...good(), frankingTag: undefined }],
    ['a negative time', { ...good(), acceptedAt: -1 }],
    ['a fractional time', { ...good(), acceptedAt: 1.5 }],
    ['a time past a safe integer', { ...good(), acceptedAt: 2 ** 60 }],
    ['a key id past 32 bits', { ...good(), frankKeyId: 2 ** 32 }],
    ['a key id as a string', { ...good(), frankKeyId: '1' }],
  ];
  for (const [name, record] of cases) {
    it(`refuses ${name} with BAD_DELIVERY_RECORD, and the envelope still goes on`, () => {
      expect(() => decodeDeliveryRecord(record)).toThrow(BAD_DELIVERY_RECORD);
      const env = decodeDelivered(wire(record));
      expect(env.delivery).toBeNull();
      expect(env.deliveryError).toBe(BAD_DELIVERY_RECORD);
      expect(env.envelope).toEqual(new Uint8Array([1, 2, 3]));
    });
  }

  it('an envelope without a record has delivery null and no error', () => {
    const env = decodeDelivered({ ...wire(undefined), delivery: undefined } as never);
    expect(env.delivery).toBeNull();
    expect(env.deliveryError).toBeUndefined();
  });
});

describe('delivery records from the real relay', () => {
  it('a franked send comes with its record on the HTTP fetch and on the websocket; an unfranked one without', async () => {
    const alice = await registered();
    const bob = await registered();
    const tag = new Uint8Array(32).fill(0x5a);
    await alice.client.send([
      { accountKey: bob.account.publicKey, deviceId: 1, id: 'franked', envelope: new Uint8Array([1]), frankingTag: tag },
    ]);
    await alice.client.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: 'plain', envelope: new Uint8Array([2]) }]);

    const fetched = await bob.client.fetchMessages();
    const [franked, plain] = fetched.messages;
    expect(franked?.id).toBe('franked');
    expect(franked?.delivery?.frankingTag).toEqual(tag);
    expect(franked?.delivery?.envelopeId.length).toBe(ENVELOPE_ID_BYTES);
    expect(franked?.delivery?.frank.length).toBe(32);
    expect(Math.abs((franked?.delivery?.acceptedAt ?? 0) - Date.now())).toBeLessThan(600_000);
    expect(plain?.delivery).toBeNull();

    const pushed: ReceivedEnvelope[] = [];
    const receiver = bob.client.connect({ onEnvelope: (e) => void pushed.push(e) }).start();
    const end = Date.now() + 8000;
    while (pushed.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    receiver.stop();
    expect(pushed.map((e) => e.id)).toEqual(['franked', 'plain']);
    expect(pushed[0]?.delivery).toEqual(franked?.delivery);
    expect(pushed[1]?.delivery).toBeNull();
  });

  it('a group fan-out carries one tag and each recipient gets its own envelope id', async () => {
    const alice = await registered();
    const bob = await registered();
    const carol = await registered();
    const tag = new Uint8Array(32).fill(0x33);
    const envelope = new Uint8Array([7, 7]);
    await alice.client.send([
      { accountKey: bob.account.publicKey, deviceId: 1, id: 'g1', envelope, frankingTag: tag },
      { accountKey: carol.account.publicKey, deviceId: 1, id: 'g1', envelope, frankingTag: tag },
    ]);
    const [b] = (await bob.client.fetchMessages()).messages;
    const [c] = (await carol.client.fetchMessages()).messages;
    expect(b?.delivery?.frankingTag).toEqual(tag);
    expect(c?.delivery?.frankingTag).toEqual(tag);
    expect(b?.delivery?.envelopeId).not.toEqual(c?.delivery?.envelopeId);
  });
});

describe('a malformed record on the websocket', () => {
  it('is reported, handed on without a record, and acknowledged; the next envelope follows', async () => {
    const sent: string[] = [];
    let socket: (WebSocketLike & { emit(data: unknown): void }) | undefined;
    class FakeSocket implements WebSocketLike {
      readyState = 1;
      onopen: ((event: unknown) => void) | null = null;
      onmessage: ((event: { data: unknown }) => void) | null = null;
      onclose: ((event: { code: number; reason: string }) => void) | null = null;
      onerror: ((event: unknown) => void) | null = null;
      constructor() {
        socket = this;
      }
      send(data: string): void {
        sent.push(data);
      }
      close(): void {
        this.readyState = 3;
      }
      emit(data: unknown): void {
        this.onmessage?.({ data: JSON.stringify(data) });
      }
    }
    const account = Account.generate();
    const signer = deviceSigner(account.createDevice(1));
    const got: ReceivedEnvelope[] = [];
    const errors: string[] = [];
    const receiver = new MailboxReceiver(
      { url: 'ws://127.0.0.1:1/v1/websocket', host: '127.0.0.1:1', signer, WebSocket: FakeSocket as never },
      { onEnvelope: (e) => void got.push(e), onError: (e) => errors.push((e as { code: string }).code) },
    ).start();
    socket?.emit({ type: 'ready' });
    socket?.emit({ type: 'envelope', ...wire({ ...good(), frank: 'short' }) });
    socket?.emit({ type: 'envelope', ...wire(good()), seq: 8 });
    await new Promise((r) => setTimeout(r, 20));
    receiver.stop();
    expect(got.map((e) => e.seq)).toEqual([7, 8]);
    expect(got[0]?.deliveryError).toBe(BAD_DELIVERY_RECORD);
    expect(got[1]?.delivery?.frankKeyId).toBe(20_601);
    expect(errors).toContain(BAD_DELIVERY_RECORD);
    const acked = sent
      .map((s) => JSON.parse(s))
      .filter((f) => f.type === 'ack')
      .flatMap((f) => f.seqs);
    expect(acked).toEqual([7, 8]);
  });
});

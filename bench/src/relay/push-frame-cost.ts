/**
 * What one pushed envelope costs, JSON text frame against binary CBOR frame
 * (spec/09-relay.md §5.2.2, issue 15), in process CPU per envelope (which a
 * loaded machine disturbs less than wall-clock time), rounds alternating
 * the two formats:
 * 1. the codec alone: the relay's encoding of a stored envelope (the pump's
 *    JSON line against push-frame.ts) and the device's decoding (JSON.parse
 *    and decode.ts against the layout reader), 1 KiB envelopes with and
 *    without a delivery record;
 * 2. the device's whole path: the client SDK's own MailboxReceiver on a
 *    socket that hands it frames as fast as it takes them (no network, no
 *    relay), from the frame's arrival to its acknowledgement being written.
 *
 *   NODE_OPTIONS=--conditions=parley:source node --import tsx bench/src/relay/push-frame-cost.ts [--envelopes 20000] [--rounds 5] [--bytes 1024]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Account, type CborValue, encodeCbor } from '@parley/core';
import { MailboxReceiver, type WebSocketConstructor, type WebSocketLike, deviceSigner, toBase64Url } from '@parley/client/relay-client';
import { decodeDelivered } from '../../../packages/client/src/relay-client/decode.ts';
import { decodeEnvelopeFrame } from '../../../packages/client/src/relay-client/push-frame.ts';
import { deliveredMessage } from '../../../packages/relay/src/delivery/mailbox-pump.ts';
import { encodeEnvelopeFrame } from '../../../packages/relay/src/delivery/push-frame.ts';

type Format = 'json' | 'cbor';

const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return new Uint8Array(b);
};

/** The frames a relay pushes for `count` envelopes of `bytes` bytes, each with a delivery record (a v2 message). */
function frames(format: Format, count: number, bytes: number, firstSeq: number): (string | Uint8Array)[] {
  const account = new Uint8Array(32).fill(7);
  const envelope = new Uint8Array(bytes).map((_, i) => (i * 31) & 0xff);
  const now = Date.now();
  const record = {
    envelopeId: new Uint8Array(16).fill(1),
    acceptedAt: now,
    frankKeyId: Math.floor(now / 86_400_000),
    frank: new Uint8Array(32).fill(2),
    frankingTag: new Uint8Array(32).fill(3),
  };
  const out: (string | Uint8Array)[] = [];
  for (let i = 0; i < count; i++) {
    const seq = firstSeq + i;
    if (format === 'json') {
      out.push(
        JSON.stringify({
          type: 'envelope',
          seq,
          sender: { account: toBase64Url(account), deviceId: 1 },
          id: `m-${seq}`,
          serverTimestamp: now,
          expiresAt: now + 86_400_000,
          envelope: toBase64Url(envelope),
          delivery: {
            envelopeId: toBase64Url(record.envelopeId),
            acceptedAt: record.acceptedAt,
            frankKeyId: record.frankKeyId,
            frank: toBase64Url(record.frank),
            frankingTag: toBase64Url(record.frankingTag),
          },
        }),
      );
    } else {
      const delivery = encodeCbor([record.envelopeId, u64(record.acceptedAt), record.frankKeyId, record.frank, record.frankingTag]);
      const f: CborValue[] = ['envelope', u64(seq), account, 1, `m-${seq}`, u64(now), u64(now + 86_400_000), envelope, delivery];
      // As ws hands a binary message over: a Buffer.
      out.push(Buffer.from(encodeCbor(f)));
    }
  }
  return out;
}

/** Feeds `format` frames to a receiver and returns CPU µs per envelope, frame in to acknowledgement out. */
async function round(format: Format, count: number, bytes: number): Promise<number> {
  let socket: WebSocketLike & { feed(data: unknown): void } = undefined as never;
  let acked = 0;
  class Loop implements WebSocketLike {
    readyState = 1;
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    constructor() {
      socket = this;
    }
    send(data: string | Uint8Array): void {
      // The auth frame, then acknowledgement frames (text or binary as negotiated): written and dropped.
      if (typeof data !== 'string' || data.startsWith('{"type":"ack"')) acked++;
    }
    close(): void {
      this.readyState = 3;
    }
    feed(data: unknown): void {
      this.onmessage?.({ data });
    }
  }
  let handled = 0;
  const receiver = new MailboxReceiver(
    {
      url: 'ws://bench/v1/websocket',
      host: 'bench',
      signer: deviceSigner(Account.generate().createDevice(1)),
      WebSocket: Loop as unknown as WebSocketConstructor,
    },
    {
      onEnvelope: () => {
        handled++;
      },
    },
    { binaryPush: format === 'cbor', rememberSeqs: 2000 },
  ).start();
  socket.feed(
    JSON.stringify({ type: 'challenge', challenge: toBase64Url(new Uint8Array(32)), serverTime: Date.now(), push: ['json', 'cbor'] }),
  );
  socket.feed(JSON.stringify({ type: 'ready', push: format }));
  const all = frames(format, count, bytes, 1);
  // Warm-up (JIT) outside the measurement.
  const warm = Math.min(2000, count / 4);
  for (let i = 0; i < warm; i++) socket.feed(all[i]);
  while (handled < warm) await new Promise((r) => setImmediate(r));
  const cpu0 = process.cpuUsage();
  // Arrivals in pages of 64, as the relay's pump pushes them, with the loop turning between pages.
  for (let i = warm; i < count; i += 64) {
    for (let k = i; k < Math.min(count, i + 64); k++) socket.feed(all[k]);
    await new Promise((r) => setImmediate(r));
  }
  while (handled < count) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 5)); // the last acknowledgement frame
  const cpu = process.cpuUsage(cpu0);
  receiver.stop();
  if (acked === 0) throw new Error('no acknowledgement written');
  return (cpu.user + cpu.system) / (count - warm);
}

/** CPU µs per call of `f` over `n` calls, after a warm-up. */
function cpuPerCall(f: () => unknown, n: number): number {
  for (let i = 0; i < n / 10; i++) f();
  const c = process.cpuUsage();
  for (let i = 0; i < n; i++) f();
  const u = process.cpuUsage(c);
  return (u.user + u.system) / n;
}

/** Section 1: the relay's encoding and the device's decoding of one frame, alone. */
function codecRows(bytes: number, rounds: number): [string, number[]][] {
  const now = Date.now();
  const record = encodeCbor([new Uint8Array(16).fill(1), u64(now), 20_600, new Uint8Array(32).fill(2), new Uint8Array(32).fill(3)]);
  const franked = {
    seq: 123_456,
    sender: { accountKey: new Uint8Array(32).fill(7), deviceId: 1 },
    clientId: 'half-12345',
    serverTimestamp: now,
    expiresAt: now + 86_400_000,
    envelope: new Uint8Array(bytes).map((_, i) => (i * 31) & 0xff),
    delivery: record,
  };
  const { delivery: _, ...plain } = franked;
  const rows = new Map<string, number[]>();
  const add = (k: string, v: number) => rows.set(k, [...(rows.get(k) ?? []), v]);
  for (let r = 0; r < rounds; r++) {
    for (const [kind, m] of [
      ['franked', franked],
      ['unfranked', plain],
    ] as const) {
      const json = JSON.stringify({ type: 'envelope', ...deliveredMessage(m) });
      // As ws hands a binary message over: a Buffer.
      const binary = Buffer.from(encodeEnvelopeFrame(m));
      add(
        `relay encode, JSON, ${kind}`,
        cpuPerCall(() => JSON.stringify({ type: 'envelope', ...deliveredMessage(m) }), 50_000),
      );
      add(
        `relay encode, binary, ${kind}`,
        cpuPerCall(() => encodeEnvelopeFrame(m), 50_000),
      );
      add(
        `device decode, JSON, ${kind}`,
        cpuPerCall(() => decodeDelivered(JSON.parse(json)), 50_000),
      );
      add(
        `device decode, binary, ${kind}`,
        cpuPerCall(() => decodeEnvelopeFrame(binary), 50_000),
      );
      if (r === 0) console.log(`frame bytes, ${kind}: JSON ${json.length}, binary ${binary.length}`);
    }
  }
  return [...rows];
}

const { values } = parseArgs({ options: { envelopes: { type: 'string' }, rounds: { type: 'string' }, bytes: { type: 'string' } } });
const count = Number(values.envelopes ?? 20_000);
const rounds = Number(values.rounds ?? 5);
const bytes = Number(values.bytes ?? 1024);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const show = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
console.log(`codec alone, CPU per ${bytes} B envelope (median of ${rounds} rounds, each round in brackets)`);
for (const [name, xs] of codecRows(bytes, rounds)) console.log(`  ${name.padEnd(34)} ${median(xs).toFixed(2)} µs (${show(xs)})`);
const results: Record<Format, number[]> = { json: [], cbor: [] };
for (let r = 0; r < rounds; r++) {
  for (const format of r % 2 === 0 ? (['json', 'cbor'] as const) : (['cbor', 'json'] as const)) {
    results[format].push(await round(format, count, bytes));
  }
}
console.log(`device CPU per pushed ${bytes} B envelope with a delivery record, frame in to ack out (${count} per round)`);
console.log(`  JSON text frames:   median ${median(results.json).toFixed(1)} µs (${show(results.json)})`);
console.log(`  binary CBOR frames: median ${median(results.cbor).toFixed(1)} µs (${show(results.cbor)})`);
console.log(`load average ${loadavg()[0]?.toFixed(2)}`);

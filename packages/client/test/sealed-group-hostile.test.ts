/**
 * Hostile sealed group envelopes through the real relay and real sessions
 * (spec/12-sealed-sender.md §10): a contact holding Bob's delivery token
 * sends [2, 7, seal, payload] built from a genuine send with the seal or the
 * payload damaged (bits flipped, cut short, extended, CBOR fields retyped,
 * the payload of another send). The relay accepts what is well-formed for
 * it; Bob's client refuses every one with a typed code (never INTERNAL),
 * leaves its group state and sessions byte-identical, and the next genuine
 * group message still arrives. Bounded: 30 inputs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCbor, encodeCbor, toHex } from '@parley/core';
import { buildApp, withDefaults } from '@parley/relay';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { connectRelayNode } from '../src/node.ts';
import { toBase64Url } from '../src/relay-client/index.ts';
import { getHeld } from '../src/sealed/token-book.ts';
import { parseAccountId } from '../src/state/ids.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { TEST_OPTIONS, record, until } from './support/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-sealed-hostile-'));
let app: FastifyInstance;
const clients: ParleyClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface SealedBody {
  payload?: string;
  messages: { account: string; deviceId: number; id: string; token: string; envelope: string }[];
}
/** Every sealed group request Alice's client made, as sent. */
const sealedSends: SealedBody[] = [];
const recordingFetch: typeof fetch = async (input, init) => {
  const raw = init?.body;
  if (String(input).endsWith('/v2/sealed') && (typeof raw === 'string' || raw instanceof Uint8Array)) {
    const body = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw)) as SealedBody;
    if (body.payload !== undefined) sealedSends.push(body);
  }
  return fetch(input, init);
};

const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));

/** A damaged copy of `bytes`: flipped, cut, extended, or (when it is CBOR) a field replaced by another type. */
function damaged(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  let tree: unknown[] | null = null;
  try {
    tree = decodeCbor(bytes, 'sample', 1 << 24) as unknown[];
  } catch {
    // A payload is ciphertext, not CBOR: byte damage only.
  }
  const structural = (t: unknown[]) =>
    fc.tuple(fc.nat(t.length - 1), fc.constantFrom<unknown>(0, 7, 'x', null, new Uint8Array(3), [])).map(([i, v]) => {
      const copy = t.slice();
      copy[i] = v;
      return encodeCbor(copy as never);
    });
  return fc.oneof(
    ...(tree ? [structural(tree)] : []),
    fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, bits]) => {
      const out = bytes.slice();
      out[at] = (out[at] as number) ^ bits;
      return out;
    }),
    fc.integer({ min: 1, max: bytes.length - 1 }).map((n) => bytes.slice(0, n)),
    fc.uint8Array({ minLength: 1, maxLength: 8 }).map((extra) => Uint8Array.from([...bytes, ...extra])),
  );
}

describe('hostile sealed group envelopes from a contact, through the real relay', () => {
  it('each is refused with a typed code, state unchanged, and the next genuine group message arrives', async () => {
    app = await buildApp({
      config: withDefaults({ dataDir: dir, logLevel: 'silent', rateLimits: { requestsPerMinutePerIp: 1_000_000 } }),
      logger: false,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const make = async (fetchFn?: typeof fetch) => {
      const store = new MemoryStore();
      const client = await ParleyClient.createAccount({
        store,
        relay: connectRelayNode(url, fetchFn ? { fetch: fetchFn } : {}),
        options: { ...TEST_OPTIONS, sealedSender: true },
      });
      clients.push(client);
      await client.start();
      return { client, store };
    };
    const alice = await make(recordingFetch);
    const bob = await make();
    const texts: string[] = [];
    bob.client.on('message', (m) => {
      if (m.body.type === 'text') texts.push(m.body.text);
    });

    // Carol too: a group message to two devices is what goes as one payload and a seal per device.
    const carol = await make();
    const joined = new Set<ParleyClient>();
    for (const m of [bob, carol]) {
      m.client.on('group-change', () => joined.add(m.client));
      await m.client.addContact(alice.client.accountId, 'alice');
      await m.client.maintain();
      // Alice holds the member's token once its grant arrived; then her group sends go sealed.
      const key = parseAccountId(m.client.accountId);
      await until(() => getHeld(alice.store, key, Date.now()) !== null, 30_000, 'the member granted Alice a token');
    }
    const group = await alice.client.createGroup('g', [bob.client.accountId, carol.client.accountId]);
    await until(() => joined.size === 2, 30_000, 'both joined');
    await alice.client.flush();
    for (const text of ['genuine 1', 'genuine 2']) {
      await alice.client.sendText(group, text);
      await until(() => texts.includes(text), 30_000, text);
    }
    expect(sealedSends.length, 'the group sends went sealed').toBeGreaterThanOrEqual(2);
    const [earlier, last] = sealedSends.slice(-2) as [SealedBody, SealedBody];
    const element = last.messages.find((m) => m.account === bob.client.accountId) as SealedBody['messages'][number];
    const genuineSeal = fromB64(element.envelope);
    const genuinePayload = fromB64(last.payload as string);

    // 30 hostile (seal, payload) pairs: a damaged seal, a damaged payload, or the payload of another send.
    const inputs = fc.sample(
      fc.oneof(
        damaged(genuineSeal).map((s) => [s, genuinePayload] as const),
        damaged(genuinePayload).map((p) => [genuineSeal, p] as const),
        fc.constant([genuineSeal, fromB64(earlier.payload as string)] as const),
      ),
      { numRuns: 30, seed: 20261206 },
    );
    const failures = record(bob.client, 'undecryptable');
    const snapshot = () =>
      JSON.stringify(['groups', 'sessions'].map((t) => bob.store.list(t as 'groups').map((e) => [e.key, toHex(e.value)])));
    const before = snapshot();
    const accepted: string[] = [];
    for (const [i, [s, p]] of inputs.entries()) {
      const id = `hostile-${i}`;
      const r = await fetch(`${url}/v2/sealed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          payload: toBase64Url(p),
          messages: [{ account: element.account, deviceId: element.deviceId, id, token: element.token, envelope: toBase64Url(s) }],
        }),
      });
      // What the relay can judge (a payload under a tag, a seal over its bound) it refuses itself, typed.
      if (r.status === 200) accepted.push(id);
      else expect([400, 413], await r.text()).toContain(r.status);
    }
    expect(accepted.length).toBeGreaterThan(20);
    await until(() => accepted.every((id) => failures.some((f) => f.clientId === id)), 30_000, 'every hostile envelope refused');
    for (const f of failures.filter((x) => accepted.includes(x.clientId))) {
      expect(['SEAL_FAILED', 'MALFORMED', 'OVERSIZED', 'UNSUPPORTED_VERSION', 'BAD_PUBLIC_KEY'], `${f.clientId}: ${f.code}`).toContain(
        f.code,
      );
    }
    expect(texts.filter((t) => t.startsWith('genuine'))).toEqual(['genuine 1', 'genuine 2']);
    expect(snapshot()).toBe(before);

    await alice.client.sendText(group, 'after the hostile ones');
    await until(() => texts.includes('after the hostile ones'), 30_000, 'after the hostile ones');
  }, 120_000);
});

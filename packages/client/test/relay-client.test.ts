// The relay client against a real relay: reconnect with backoff across a
// relay restart, clock-skew correction, and refusal of bundles and device
// lists the account did not sign (the relay is not trusted for keys).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Account, type DeviceIdentity, PreKeyStore, isParleyError } from '@parley/core';
import { buildApp } from '@parley/relay';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type MailboxState, RelayClient, deviceSigner, fromBase64Url, preKeysOf, toBase64Url } from '../src/relay-client/index.ts';

let dataDir: string;
let app: FastifyInstance;
let port: number;

async function startRelay(onPort = 0): Promise<void> {
  app = await buildApp({ config: { dataDir, logLevel: 'silent' }, logger: false });
  await app.listen({ host: '127.0.0.1', port: onPort });
  const address = app.server.address();
  port = typeof address === 'object' && address ? address.port : 0;
}

const url = () => `http://127.0.0.1:${port}`;

function device(): { device: DeviceIdentity; prekeys: PreKeyStore; account: Account } {
  const account = Account.generate();
  const d = account.createDevice(1);
  return { account, device: d, prekeys: PreKeyStore.generate(d, { oneTimePreKeys: 1, kemPreKeys: 1 }) };
}

async function registered(options: Partial<ConstructorParameters<typeof RelayClient>[0]> = {}) {
  const d = device();
  const client = new RelayClient({ baseUrl: url(), signer: deviceSigner(d.device), WebSocket: WebSocket as never, ...options });
  await client.registerDevice(d.device.certificate, preKeysOf(d.prekeys));
  return { ...d, client };
}

async function until(predicate: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'parley-client-'));
  await startRelay();
});
afterEach(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('mailbox receiver', () => {
  it('reconnects with backoff when the relay restarts and receives what was sent meanwhile', async () => {
    const alice = await registered();
    const bob = await registered();
    const states: MailboxState[] = [];
    const got: string[] = [];
    const receiver = bob.client
      .connect({ onEnvelope: (e) => void got.push(e.id), onStateChange: (s) => states.push(s) }, { baseDelayMs: 50, maxDelayMs: 200 })
      .start();
    await receiver.whenOpen();

    const samePort = port;
    await app.close(); // websockets close with 1001
    await until(() => receiver.state === 'reconnecting');
    await startRelay(samePort);
    await alice.client.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: 'after-restart', envelope: new Uint8Array([9]) }]);
    await until(() => got.length === 1);
    expect(got).toEqual(['after-restart']);
    expect(states).toContain('reconnecting');
    expect(states.filter((s) => s === 'open').length).toBeGreaterThanOrEqual(2);
    receiver.stop();
    expect(receiver.state).toBe('stopped');
  });
});

describe('requests', () => {
  it('corrects a skewed clock from the relay answer and retries once', async () => {
    const skewed = await registered({ now: () => Date.now() + 3600_000 });
    // Registration itself went through after the correction.
    expect(skewed.client).toBeInstanceOf(RelayClient);
    expect((await skewed.client.preKeyCounts()).signedPreKeyId).toBeGreaterThan(0);
  });

  it('refuses a bundle the account did not sign, even from the relay', async () => {
    const bob = await registered();
    const mallory = device();
    // A relay (or anyone in between) swapping Bob's bundle for one with Mallory's keys.
    const tampering: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).includes('/v1/keys/')) return response;
      const body = (await response.json()) as { account: string; bundles: { deviceId: number; bundle: string; certificateHash: string }[] };
      const { encodeBundle } = await import('@parley/core');
      const forged = encodeBundle(mallory.prekeys.bundle());
      body.bundles = body.bundles.map((b) => ({ ...b, bundle: toBase64Url(forged) }));
      return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const alice = await registered({ fetch: tampering });
    const error = await alice.client.fetchBundles(bob.account.publicKey, 1).catch((e) => e);
    expect(isParleyError(error, 'BAD_CERTIFICATE')).toBe(true);
  });

  it('checks every listed certificate against the account', async () => {
    const bob = await registered();
    const listed = await bob.client.listDevices(bob.account.publicKey);
    expect(listed.map((d) => d.deviceId)).toEqual([1]);
    const other = Account.generate();
    const error = await bob.client.listDevices(other.publicKey).catch((e) => e);
    expect(error).toMatchObject({ code: 'NOT_FOUND', status: 404 });
    expect(fromBase64Url(toBase64Url(listed[0]?.certificateHash as Uint8Array))).toHaveLength(32);
  });
});

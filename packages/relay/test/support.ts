// Shared helpers for the relay tests: a relay on in-memory SQLite (or a
// real listening one), devices with prekeys, and signed inject() calls.
// The one module relay tests import helpers from; its parts live in
// support/ (signing from the spec on @parley/core, a small typed test
// client). The relay's tests never import the client package
// (.dependency-cruiser.cjs, rule relay-not-client-or-bench): the client's
// own tests check the client against a real relay.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Account,
  type DeviceIdentity,
  PreKeyStore,
  defaultProvider,
  encodeCertificate,
  encodeKemPreKey,
  encodeOneTimePreKey,
  encodeSignedPreKey,
  seal,
  utf8,
} from '@parley/core';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../src/app.ts';
import type { RelayConfigOverrides } from '../src/config.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { RelayStorage } from '../src/storage/types.ts';
import { type RelaySigner, accountSigner, authorizationHeader, contentDigest, deviceSigner, toBase64Url } from './support/signing.ts';
import { TestRelayClient, preKeysOf } from './support/test-client.ts';

// What tests need besides the helpers below, so they import from one place.
export {
  type RelaySigner,
  authorizationHeader,
  contentDigest,
  deviceSigner,
  fromBase64Url,
  requestStatementBody,
  toBase64Url,
  websocketAuthFrame,
} from './support/signing.ts';
export { type ReceivedEnvelope, TestRelayClient, isRelayError, preKeysOf } from './support/test-client.ts';

export const HOST = 'relay.test';

export interface TestRelay {
  readonly app: FastifyInstance;
  readonly dir: string;
  readonly clock: { now: number };
  close(): Promise<void>;
}

export async function testRelay(
  config: RelayConfigOverrides = {},
  options: { storage?: RelayStorage; clock?: boolean } = {},
): Promise<TestRelay> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-relay-'));
  const clock = { now: Date.now() };
  const app = await buildApp({
    config: { dataDir: dir, logLevel: 'silent', ...config },
    storage: options.storage ?? new SqliteStorage({ path: ':memory:' }),
    ...(options.clock ? { now: () => clock.now } : {}),
    logger: false,
  });
  await app.ready();
  return {
    app,
    dir,
    clock,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestDevice {
  readonly account: Account;
  readonly device: DeviceIdentity;
  readonly prekeys: PreKeyStore;
  readonly signer: RelaySigner;
  /** base64url account key, as in URLs */
  readonly id: string;
}

export function makeDevice(account = Account.generate(), deviceId = 1, keys = { oneTimePreKeys: 5, kemPreKeys: 2 }): TestDevice {
  const device = account.createDevice(deviceId);
  const prekeys = PreKeyStore.generate(device, keys);
  return { account, device, prekeys, signer: deviceSigner(device), id: toBase64Url(account.publicKey) };
}

/** A delivery token `recipient` hands out (spec/12 §4), and the hash of it the relay stores and checks. */
export interface Grant {
  readonly token: Uint8Array;
  readonly hash: Uint8Array;
}

export function grant(recipient: TestDevice): Grant {
  const token = seal.newDeliveryToken(defaultProvider());
  return { token, hash: seal.deliveryTokenHash(recipient.account.publicKey, token, defaultProvider()) };
}

export function accountOf(d: TestDevice): RelaySigner {
  return accountSigner(d.account);
}

export interface SignedRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';
  url: string;
  json?: unknown;
  /** Raw body (sent as given; signed unless `unsignedBody`). */
  body?: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
  unsignedBody?: boolean;
  /** Send the signed body's digest in Content-Digest, as the client does (default true). */
  declareDigest?: boolean;
  timestamp?: number;
  nonce?: Uint8Array;
}

/** The Authorization header and body for a request (support/signing.ts). */
export function signRequest(signer: RelaySigner, r: SignedRequest, now = Date.now()) {
  const raw = r.json !== undefined ? utf8(JSON.stringify(r.json)) : typeof r.body === 'string' ? utf8(r.body) : r.body;
  const sha256 = (b: Uint8Array) => defaultProvider().backend.sha256(b);
  const authorization = authorizationHeader(
    {
      method: r.method,
      host: HOST,
      pathAndQuery: r.url,
      bodySha256: r.unsignedBody ? new Uint8Array(32) : sha256(raw ?? new Uint8Array(0)),
      timestamp: r.timestamp ?? now,
      nonce: r.nonce ?? crypto.getRandomValues(new Uint8Array(16)),
    },
    signer,
  );
  return { authorization, raw };
}

export function inject(app: FastifyInstance, signer: RelaySigner | null, r: SignedRequest): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { host: HOST, ...r.headers };
  let payload: string | Buffer | undefined;
  if (signer) {
    const { authorization, raw } = signRequest(signer, r, app.relay.now());
    headers['authorization'] = authorization;
    if (raw) payload = Buffer.from(raw);
    if (raw && !r.unsignedBody && r.declareDigest !== false) {
      headers['content-digest'] ??= contentDigest(defaultProvider().backend.sha256(raw));
    }
  } else if (r.json !== undefined) payload = JSON.stringify(r.json);
  else if (r.body !== undefined) payload = typeof r.body === 'string' ? r.body : Buffer.from(r.body);
  if (payload !== undefined)
    headers['content-type'] ??= r.contentType ?? (r.json !== undefined ? 'application/json' : 'application/octet-stream');
  return app.inject({ method: r.method, url: r.url, headers, ...(payload !== undefined ? { payload } : {}) } as InjectOptions);
}

/** Registers a device with all its current prekeys. */
export async function register(
  app: FastifyInstance,
  d: TestDevice,
  headers: Record<string, string> = {},
  override: Record<string, unknown> = {},
): Promise<LightMyRequestResponse> {
  const keys = preKeysOf(d.prekeys);
  const json = {
    certificate: toBase64Url(encodeCertificate(d.device.certificate)),
    signedPreKey: toBase64Url(encodeSignedPreKey(keys.signedPreKey)),
    lastResortKemPreKey: toBase64Url(encodeKemPreKey(keys.lastResortKemPreKey)),
    oneTimePreKeys: keys.oneTimePreKeys.map((k) => toBase64Url(encodeOneTimePreKey(k))),
    kemPreKeys: keys.kemPreKeys.map((k) => toBase64Url(encodeKemPreKey(k))),
    ...override,
  };
  const r = await inject(app, d.signer, {
    method: 'PUT',
    url: '/v1/devices',
    json,
    headers: { 'parley-certificate': json.certificate as string, ...headers },
  });
  if (r.statusCode !== 200) throw new Error(`registration failed: ${r.statusCode} ${r.body}`);
  return r;
}

/** The removal route for a device: it names the certificate removed (spec/09-relay.md §4.1). */
export function removalUrl(d: TestDevice): string {
  const hash = toBase64Url(defaultProvider().backend.sha256(encodeCertificate(d.device.certificate)));
  return `/v1/accounts/${d.id}/devices/${d.device.deviceId}?certificateHash=${hash}`;
}

export function envelopeFor(to: TestDevice, id: string, body = `ciphertext ${id}`) {
  return { account: to.id, deviceId: to.device.deviceId, id, envelope: toBase64Url(utf8(body)) };
}

/** Starts `app` listening on 127.0.0.1 (a free port); returns its base URL. */
export async function listenLocally(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

/** A relay listening on 127.0.0.1 (random port), with a test client factory. */
export async function listeningRelay(config: RelayConfigOverrides = {}, options: { storage?: RelayStorage; clock?: boolean } = {}) {
  const relay = await testRelay(config, options);
  const url = await listenLocally(relay.app);
  return {
    ...relay,
    url,
    client: (signer: RelaySigner) => new TestRelayClient({ baseUrl: url, signer }),
  };
}

export function json<T = Record<string, unknown>>(r: { body: string }): T {
  return JSON.parse(r.body) as T;
}

/** Waits until `predicate` holds (polling), or fails after `ms`. */
export async function eventually(predicate: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function eventuallyAsync(predicate: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// The relay client and the v2 bundle route, against a real relay
// (spec/09-relay.md §4.2.1, spec/design/formats-v2.md §10): a v1 client keeps
// working against a v2 relay and a v2 device; a v2 client reads v2 bundles,
// and falls back to /v1 when the relay has no v2 route (a 404 there, then an
// answer on /v1), remembering it.
import { Account, PreKeyStore, SessionRecord, isBundleV2 } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { RelayClient, deviceSigner, preKeysOf } from '../src/relay-client/index.ts';
import { loopbackRelay } from './support/loopback-relay.ts';

const server = loopbackRelay('versions');

async function registered(options: { v2Form: boolean; fetch?: typeof fetch }) {
  const account = Account.generate();
  const device = account.createDevice(1);
  const prekeys = PreKeyStore.generate(device, { oneTimePreKeys: 2, kemPreKeys: 1 });
  const client = new RelayClient({ baseUrl: server.url, signer: deviceSigner(device), ...(options.fetch ? { fetch: options.fetch } : {}) });
  const { signedPreKeyV2, ...v1Keys } = preKeysOf(prekeys);
  await client.registerDevice(device.certificate, options.v2Form ? { ...v1Keys, signedPreKeyV2 } : v1Keys);
  return { account, device, prekeys, client };
}

describe('relay client and bundle versions', () => {
  it('a v1 client (the /v1 route) starts a session with a v2 device, as before', async () => {
    const bob = await registered({ v2Form: true });
    const alice = await registered({ v2Form: false });
    const [fetched] = await alice.client.fetchBundles(bob.account.publicKey, 1);
    if (!fetched) throw new Error('no bundle');
    expect(fetched.bundle.version).toBe(1);
    const a = SessionRecord.initiate(alice.device, fetched.bundle, { localVersions: [1] });
    const b = new SessionRecord();
    const out = b.decrypt(a.encrypt(new TextEncoder().encode('hi')), { device: bob.device, prekeys: bob.prekeys });
    expect(new TextDecoder().decode(out.plaintext)).toBe('hi');
  });

  it('a v2 client gets the v2 bundle of a v2 device and the v1 bundle of a v1 device', async () => {
    const bob = await registered({ v2Form: true });
    const carol = await registered({ v2Form: false });
    const alice = await registered({ v2Form: true });
    const [b] = await alice.client.fetchBundlesV2(bob.account.publicKey, 1);
    const [c] = await alice.client.fetchBundlesV2(carol.account.publicKey, 1);
    expect(b && isBundleV2(b.bundle) && b.bundle.signedPreKey.versions).toEqual([1, 2]);
    expect(c?.bundle.version).toBe(1);
  });

  it('falls back to /v1 on a relay without the v2 route, and asks /v1 only from then on', async () => {
    const bob = await registered({ v2Form: true });
    const paths: string[] = [];
    // An older relay: /v2 answers 404 (as an unknown route does).
    const oldRelay: typeof fetch = async (input, init) => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      paths.push(url.pathname.split('/').slice(0, 3).join('/'));
      if (url.pathname.startsWith('/v2/')) {
        return new Response(JSON.stringify({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'no route' }), {
          status: 404,
          headers: { 'content-type': 'application/json' },
        });
      }
      return fetch(input, init);
    };
    const alice = await registered({ v2Form: true, fetch: oldRelay });
    const [first] = await alice.client.fetchBundlesV2(bob.account.publicKey, 1);
    expect(first?.bundle.version).toBe(1);
    const [second] = await alice.client.fetchBundlesV2(bob.account.publicKey, 1);
    expect(second?.bundle.version).toBe(1);
    expect(paths.filter((p) => p === '/v2/keys')).toHaveLength(1);
    expect(paths.filter((p) => p === '/v1/keys')).toHaveLength(2);
  });

  it('an unknown device is still an error on a v2 relay (404 on both routes), and the v2 route is not given up', async () => {
    const alice = await registered({ v2Form: true });
    const bob = await registered({ v2Form: true });
    await expect(alice.client.fetchBundlesV2(Account.generate().publicKey, 1)).rejects.toMatchObject({ status: 404 });
    const [b] = await alice.client.fetchBundlesV2(bob.account.publicKey, 1);
    expect(b?.bundle.version).toBe(2);
  });
});

// Issue 12 finding 6 (attachments; device removal is engineer "devices"'s):
// a captured `POST /v1/attachments`, replayed, must not create another
// pending upload, not after a restart inside the auth window and not on
// another relay process sharing the database. The replay records are in
// storage (spec/09-relay.md §3.3), and creation is idempotent by the
// request's signed nonce (§4.5), so even a replay that got past them would
// return the first upload.
import { afterEach, describe, expect, it } from 'vitest';
import { makeDevice, register } from '../support.ts';
import { POSTGRES_REQUIRED, POSTGRES_URL, capture, durableRelay, send, twoRelaysOnPostgres } from './quota-support.ts';

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers) await c();
  closers = [];
});

describe('finding 6: a replayed attachment creation', () => {
  it('after a restart inside the window, creates nothing', async () => {
    const durable = await durableRelay();
    closers.push(() => durable.close());
    const owner = makeDevice();
    await register(durable.relay.app, owner);
    const captured = capture(owner.signer, { method: 'POST', url: '/v1/attachments', json: { size: 100 } });
    const first = await send(durable.relay.url, captured);
    expect(first.status).toBe(201);

    const relay = await durable.restart();
    const replayed = await send(relay.url, captured);
    console.info('finding 6, replay after restart:', replayed.status, replayed.body.code);
    expect(replayed).toMatchObject({ status: 401, body: { code: 'AUTH_REPLAYED' } });
    expect((await relay.app.relay.storage.stats()).attachments).toBe(1);
  }, 30_000);
});

if (!POSTGRES_URL && POSTGRES_REQUIRED) {
  it('PostgreSQL server for the multi-process replay tests', () => {
    throw new Error('CI=true but PARLEY_TEST_POSTGRES_URL is not set');
  });
}

describe.skipIf(!POSTGRES_URL)('finding 6 with two relay processes on one PostgreSQL database', () => {
  it('a creation captured on one process creates nothing on the other', async () => {
    const { a, b, close } = await twoRelaysOnPostgres();
    closers.push(close);
    const owner = makeDevice();
    await register(a.app, owner);
    const captured = capture(owner.signer, { method: 'POST', url: '/v1/attachments', json: { size: 100 } });
    expect((await send(a.url, captured)).status).toBe(201);
    const replays = await Promise.all([send(b.url, captured), send(b.url, captured), send(a.url, captured)]);
    console.info('finding 6, replays on two processes:', JSON.stringify(replays.map((r) => r.status)));
    expect(replays.map((r) => r.body.code)).toEqual(['AUTH_REPLAYED', 'AUTH_REPLAYED', 'AUTH_REPLAYED']);
    expect((await b.app.relay.storage.stats()).attachments).toBe(1);
  }, 30_000);
});

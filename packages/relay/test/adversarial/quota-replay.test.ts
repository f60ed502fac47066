// Issue 12 finding 3: one registered device signing requests as fast as it
// can must not make the relay refuse everyone else. The replay records are
// partitioned per signer with a quota (spec/09-relay.md §3.3): the flooding
// device is refused by itself (429), while a friend keeps sending, the victim
// keeps reading and a new device still registers. The records live in
// storage, so two relay processes on one PostgreSQL database share them: a
// request captured on one is refused on the other, and the quota is one.
import { afterEach, describe, expect, it } from 'vitest';
import type { RelayConfigOverrides } from '../../src/config.ts';
import { listeningRelay, makeDevice, register } from '../support.ts';
import {
  type Answer,
  type Listening,
  POSTGRES_REQUIRED,
  POSTGRES_URL,
  bounded,
  capture,
  message,
  send,
  signed,
  tally,
  twoRelaysOnPostgres,
} from './quota-support.ts';

const QUOTA = 100;
const ATTACK = 2 * QUOTA;
const config = {
  rateLimits: { signedRequestsPerSigner: QUOTA, requestsPerMinutePerIp: 100_000 },
  // Only read by the relay before this fix (one global cache of this size):
  // it keeps the attack on the old code as small as the one here.
  replayCacheEntries: QUOTA + 20,
} as RelayConfigOverrides;

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers) await c();
  closers = [];
});

async function cast(relay: Listening) {
  const attacker = makeDevice();
  const friend = makeDevice();
  const victim = makeDevice();
  for (const d of [attacker, friend, victim]) await register(relay.app, d);
  return { attacker, friend, victim };
}

describe('finding 3: one device flooding signed requests', () => {
  it('is refused alone (429) while a friend sends, the victim reads and a new device registers', async () => {
    const relay = await listeningRelay(config, { clock: true });
    closers.push(() => relay.close());
    const { attacker, friend, victim } = await cast(relay);

    // The attack and the legitimate traffic run at the same time.
    const attack = bounded(ATTACK, 8, () => signed(relay, attacker, { method: 'GET', url: '/v1/keys' }));
    const friendSends = bounded(20, 2, (i) => message(relay, friend, victim, `f${i}`));
    const [attacked, sent] = await Promise.all([attack, friendSends]);
    const newcomer = makeDevice();
    const registration = await register(relay.app, newcomer).then(
      (r) => r.statusCode,
      () => 0,
    );
    const inbox = await signed(relay, victim, { method: 'GET', url: '/v1/messages?limit=100' });

    const figures = { attacker: tally(attacked), friend: tally(sent), registration, inbox: inbox.status };
    console.info('finding 3 (SQLite):', JSON.stringify(figures));
    expect(tally(sent)).toEqual({ 200: 20 });
    expect(registration).toBe(200);
    expect(inbox.status).toBe(200);
    expect((inbox.body.messages as unknown[]).length).toBe(20);
    // The attacker got its quota (its registration was one request) and then its own 429s, nothing else.
    expect(tally(attacked)).toEqual({ 200: QUOTA - 1, 429: ATTACK - QUOTA + 1 });
    const refused = attacked.find((a) => a.status === 429) as Answer;
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED', details: { limit: QUOTA } });
    // The attacker's own requests work again once its records expire.
    relay.clock.now += 11 * 60_000;
    expect((await signed(relay, attacker, { method: 'GET', url: '/v1/keys' })).status).toBe(200);
  }, 30_000);
});

if (!POSTGRES_URL && POSTGRES_REQUIRED) {
  it('PostgreSQL server for the multi-process replay tests', () => {
    throw new Error('CI=true but PARLEY_TEST_POSTGRES_URL is not set');
  });
}

describe.skipIf(!POSTGRES_URL)('finding 3 with two relay processes on one PostgreSQL database', () => {
  it('a request captured on one process is refused on the other, and the quota is shared', async () => {
    const { a, b, close } = await twoRelaysOnPostgres(config);
    closers.push(close);
    const { attacker, friend, victim } = await cast(a);

    const captured = capture(friend.signer, { method: 'GET', url: '/v1/keys' });
    expect((await send(a.url, captured)).status).toBe(200);
    const replayed = await send(b.url, captured);
    expect(replayed).toMatchObject({ status: 401, body: { code: 'AUTH_REPLAYED' } });

    // Flooding both processes in turn does not double the quota.
    const attacked = await bounded(ATTACK, 8, (i) => signed(i % 2 ? a : b, attacker, { method: 'GET', url: '/v1/keys' }));
    const sent = await bounded(10, 2, (i) => message(i % 2 ? a : b, friend, victim, `pg${i}`));
    console.info('finding 3 (PostgreSQL, two processes):', JSON.stringify({ attacker: tally(attacked), friend: tally(sent) }));
    expect(tally(attacked)[200]).toBeLessThanOrEqual(QUOTA);
    expect(tally(attacked)[429]).toBeGreaterThanOrEqual(ATTACK - QUOTA);
    expect(tally(sent)).toEqual({ 200: 10 });
  }, 30_000);
});

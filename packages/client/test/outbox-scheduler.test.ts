/**
 * The outbox scheduler on its own (engine/outbox-scheduler.ts): what is
 * queued and how one entry flushes are stand-ins here, so each rule is
 * checked without a store or a relay: kicks coalesce into one pump, a
 * caller hears its own entry's result, close settles every waiter, and one
 * entry's failure (or a flush that throws) stops nothing that follows.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClientError } from '../src/errors.ts';
import type { FlushResult } from '../src/engine/outbox.ts';
import { OutboxScheduler, type OutboxSchedulerDeps } from '../src/engine/outbox-scheduler.ts';
import { until } from './support/harness.ts';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const SENT: FlushResult = { status: 'sent' };
const unavailable = (): FlushResult => ({ status: 'unavailable', error: new ClientError('RELAY_UNAVAILABLE', 'down') });
const blocked = (): FlushResult => ({ status: 'blocked', error: new ClientError('UNTRUSTED_DEVICE', 'ghost') });

/**
 * A scheduler over an in-memory queue of keys. `results` answers each
 * flush (default: sent, and the entry leaves the queue); a flush that is
 * `held` waits until the test releases it.
 */
function harness(options: { keys?: string[]; gate?: () => Promise<void>; results?: (key: string, n: number) => FlushResult } = {}) {
  const queue = [...(options.keys ?? [])];
  const flushed: string[] = [];
  const warnings: unknown[] = [];
  const held = new Map<string, Deferred<void>>();
  let running = 0;
  let maxRunning = 0;
  const deps: OutboxSchedulerDeps = {
    queued: () => [...queue],
    flush: async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      flushed.push(key);
      try {
        const hold = held.get(key);
        if (hold) await hold.promise;
        const result = options.results?.(key, flushed.filter((k) => k === key).length) ?? SENT;
        if (result.status === 'sent' || result.status === 'failed') queue.splice(queue.indexOf(key), 1);
        return result;
      } finally {
        running--;
      }
    },
    gate: options.gate ?? (async () => undefined),
    idle: async () => undefined,
    warn: (e) => warnings.push(e),
    retryDelayMs: 5,
    // Long enough never to fire within a test: a blocked entry waits for the next kick.
    blockedRetryMs: 60_000,
  };
  const scheduler = new OutboxScheduler(deps);
  return {
    scheduler,
    queue,
    flushed,
    warnings,
    hold: (key: string) => {
      const d = deferred<void>();
      held.set(key, d);
      return () => {
        held.delete(key);
        d.resolve();
      };
    },
    maxRunning: () => maxRunning,
  };
}

describe('outbox scheduler', () => {
  const open: OutboxScheduler[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  const track = <T extends { scheduler: OutboxScheduler }>(h: T): T => {
    open.push(h.scheduler);
    return h;
  };

  it('coalesces kicks: any number during a round costs one more round, never a second pump', async () => {
    // A blocked entry stays queued and is flushed once per round, so flushes count rounds.
    const h = track(harness({ keys: ['a'], results: () => blocked() }));
    const release = h.hold('a');
    const first = h.scheduler.waitFor('a', { kick: true });
    await until(() => h.flushed.length === 1, 2000, 'the first flush to start');
    for (let i = 0; i < 10; i++) h.scheduler.kick();
    release();
    expect((await first).status).toBe('blocked');
    await until(() => h.flushed.length >= 2, 2000, 'the one extra round');
    // Let any further (wrong) round show itself before counting.
    await new Promise((r) => setTimeout(r, 20));
    expect(h.flushed).toEqual(['a', 'a']);
    expect(h.maxRunning()).toBe(1);
  });

  it("a caller hears its own entry's result, after the entries queued before it", async () => {
    const h = track(harness({ keys: ['a', 'b', 'c'], results: (key) => (key === 'b' ? blocked() : SENT) }));
    const b = h.scheduler.waitFor('b');
    const c = h.scheduler.waitFor('c', { kick: true });
    expect((await b).status).toBe('blocked');
    expect((await c).status).toBe('sent');
    // The blocked entry holds up no other: it stays queued, the rest went in order.
    expect(h.flushed).toEqual(['a', 'b', 'c']);
    expect(h.queue).toEqual(['b']);
  });

  it('an unreachable relay ends the round: every waiter hears at once, and the pump comes back by itself', async () => {
    let down = true;
    const h = track(harness({ keys: ['a', 'b'], results: () => (down ? unavailable() : SENT) }));
    const a = h.scheduler.waitFor('a');
    const b = h.scheduler.waitFor('b', { kick: true });
    expect((await a).status).toBe('unavailable');
    // b was never tried: the relay that failed a would fail it too.
    expect((await b).status).toBe('unavailable');
    expect(h.flushed).toEqual(['a']);
    down = false;
    // No kick: the retry timer brings the pump back.
    await until(() => h.queue.length === 0, 5000, 'the retry to send both');
    expect(h.flushed).toEqual(['a', 'a', 'b']);
  });

  it('close settles every waiter with CLOSED, after the running flush, and nothing runs after it', async () => {
    const h = track(harness({ keys: ['a', 'b'] }));
    const release = h.hold('a');
    const a = h.scheduler.waitFor('a', { kick: true });
    const b = h.scheduler.waitFor('b');
    const never = h.scheduler.waitFor('not-queued');
    await until(() => h.flushed.length === 1, 2000, 'the first flush to start');
    let closed = false;
    const closing = h.scheduler.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(false); // waits for the running flush
    release();
    await closing;
    expect((await a).status).toBe('sent');
    for (const w of [await b, await never]) {
      expect(w.status).toBe('unavailable');
      expect((w as { error: ClientError }).error.code).toBe('CLOSED');
    }
    h.scheduler.kick();
    await new Promise((r) => setTimeout(r, 10));
    expect(h.flushed).toEqual(['a']);
  });

  it('a failed entry is reported and the next one goes; a flush that throws stops no later kick', async () => {
    const boom = new Error('permanent refusal');
    let throwOnce = true;
    const h = track(
      harness({
        keys: ['a', 'b'],
        results: (key) => {
          if (key === 'a') return { status: 'failed', error: boom };
          if (throwOnce) {
            throwOnce = false;
            throw new Error('flush itself broke');
          }
          return SENT;
        },
      }),
    );
    const a = h.scheduler.waitFor('a', { kick: true });
    expect((await a).status).toBe('failed');
    await until(() => h.warnings.length === 2, 2000, 'both failures reported');
    expect(h.warnings[0]).toBe(boom);
    expect((h.warnings[1] as Error).message).toBe('flush itself broke');
    expect(h.queue).toEqual(['b']);
    const b = h.scheduler.waitFor('b', { kick: true });
    expect((await b).status).toBe('sent');
    expect(h.queue).toEqual([]);
  });

  it('the gate runs once before the first flush; while it fails, waiters hear unavailable and nothing is flushed', async () => {
    let gateCalls = 0;
    let gateFails = true;
    const h = track(
      harness({
        keys: ['a'],
        gate: async () => {
          gateCalls++;
          if (gateFails) throw new Error('store broke during the check');
        },
      }),
    );
    const first = await h.scheduler.waitFor('a', { kick: true });
    expect(first.status).toBe('unavailable');
    expect((first as { error: ClientError }).error.code).toBe('RELAY_UNAVAILABLE');
    expect(h.flushed).toEqual([]);
    // Not the relay's failure: reported as well.
    expect((h.warnings[0] as Error).message).toBe('store broke during the check');
    gateFails = false;
    await until(() => h.queue.length === 0, 5000, 'the retry to pass the gate and send');
    h.queue.push('b');
    expect((await h.scheduler.waitFor('b', { kick: true })).status).toBe('sent');
    expect(gateCalls).toBeGreaterThanOrEqual(2);
    const afterOpen = gateCalls;
    h.queue.push('c');
    await h.scheduler.waitFor('c', { kick: true });
    expect(gateCalls).toBe(afterOpen);
  });

  it('drain resolves once the outbox is empty, and rejects with what keeps an entry waiting', async () => {
    const h = track(harness({ keys: ['a', 'b'] }));
    await h.scheduler.drain();
    expect(h.queue).toEqual([]);
    const g = track(harness({ keys: ['x'], results: () => blocked() }));
    await expect(g.scheduler.drain()).rejects.toMatchObject({ code: 'UNTRUSTED_DEVICE' });
  });
});

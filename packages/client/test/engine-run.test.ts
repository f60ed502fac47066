/**
 * The runner (engine/run.ts), the one path every SDK command takes:
 * prepare, one transaction around commit, publish, then the events and an
 * outbox kick, one command at a time. A commit that throws leaves the store
 * as it was and says nothing to the app.
 */
import { describe, expect, it } from 'vitest';
import type { Context } from '../src/engine/context.ts';
import type { OutboxScheduler } from '../src/engine/outbox-scheduler.ts';
import { type Command, Runner } from '../src/engine/run.ts';
import { SerialQueue } from '../src/engine/serial.ts';
import { Emitter } from '../src/events.ts';
import { MemoryStore } from '../src/store/memory.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : null);

function setup() {
  const store = new MemoryStore();
  const events = new Emitter();
  const log: string[] = [];
  events.on('warning', (w) => log.push(`event ${w.code}`));
  const serial = new SerialQueue();
  const waited: { key: string; busy: boolean }[] = [];
  const outbox = {
    kick: () => log.push('kick'),
    waitFor: (key: string) => {
      waited.push({ key, busy: serial.busy });
      return Promise.resolve({ status: 'sent' as const });
    },
  } as unknown as OutboxScheduler;
  const ctx = { store, events } as unknown as Context;
  return { store, log, serial, waited, runner: new Runner(ctx, serial, outbox) };
}

/** A command that logs its phases, writes `key` and reports a warning event. */
function writing(log: string[], key: string, hold?: Promise<void>): Command<string> {
  return {
    async prepare() {
      log.push(`prepare ${key}`);
      if (hold) await hold;
    },
    commit(ctx, pending) {
      log.push(`commit ${key}`);
      ctx.store.put('identity', key, bytes(key));
      pending.add('warning', { code: key, message: 'written' });
      return key;
    },
    async publish() {
      log.push(`publish ${key}`);
    },
  };
}

describe('engine runner', () => {
  it('runs prepare, commit, publish, then emits and kicks; one command at a time', async () => {
    const { runner, log, store } = setup();
    let release!: () => void;
    const hold = new Promise<void>((r) => {
      release = r;
    });
    const a = runner.run(writing(log, 'A', hold));
    const b = runner.run(writing(log, 'B'));
    await new Promise((r) => setTimeout(r, 5));
    expect(log).toEqual(['prepare A']); // B waits for A's turn to end
    release();
    expect(await a).toBe('A');
    expect(await b).toBe('B');
    expect(log).toEqual(['prepare A', 'commit A', 'publish A', 'event A', 'kick', 'prepare B', 'commit B', 'publish B', 'event B', 'kick']);
    expect(text(store.get('identity', 'B'))).toBe('B');
  });

  it('a commit that throws rolls its writes back, emits nothing, kicks nothing, and the next command runs', async () => {
    const { runner, log, store } = setup();
    const failing: Command<void> = {
      commit(ctx, pending) {
        ctx.store.put('identity', 'half', bytes('written before the failure'));
        pending.add('warning', { code: 'NEVER', message: 'rolled back' });
        throw new Error('refused half-way');
      },
    };
    await expect(runner.run(failing)).rejects.toThrow('refused half-way');
    expect(text(store.get('identity', 'half'))).toBeNull();
    expect(log).toEqual([]);
    await runner.run(writing(log, 'next'));
    expect(log).toEqual(['prepare next', 'commit next', 'publish next', 'event next', 'kick']);
  });

  it('a publish that fails keeps the commit (it is stored) but sends no event', async () => {
    const { runner, log, store } = setup();
    const command = { ...writing(log, 'kept'), publish: async () => Promise.reject(new Error('relay down')) };
    await expect(runner.run(command)).rejects.toThrow('relay down');
    expect(text(store.get('identity', 'kept'))).toBe('kept');
    expect(log).toEqual(['prepare kept', 'commit kept']);
  });

  it('queue registers the wait for its outbox entry inside the serial job, before the pump can flush it', async () => {
    const { runner, waited } = setup();
    const { result, flushed } = await runner.queue({ commit: () => ({ key: '000000000007' }) });
    expect(result.key).toBe('000000000007');
    expect(waited).toEqual([{ key: '000000000007', busy: true }]);
    expect((await flushed).status).toBe('sent');
  });

  it('runSoon writes at once when the queue is empty, and after the running job (never inside it) otherwise', async () => {
    const { runner, log, store } = setup();
    const warn = (e: unknown) => log.push(`warn ${(e as Error).message}`);
    runner.runSoon({ commit: (ctx) => ctx.store.put('identity', 'now', bytes('1')) }, warn);
    expect(text(store.get('identity', 'now'))).toBe('1');

    let release!: () => void;
    const hold = new Promise<void>((r) => {
      release = r;
    });
    let seenByJob: string | null = 'unset';
    const job = runner.job(async (ctx) => {
      await hold;
      // The job reads what it wrote before its await: the deferred write has not cut in.
      seenByJob = text(ctx.store.get('identity', 'soon'));
    });
    runner.runSoon({ commit: (ctx) => ctx.store.put('identity', 'soon', bytes('2')) }, warn);
    expect(text(store.get('identity', 'soon'))).toBeNull();
    release();
    await job;
    await new Promise((r) => setTimeout(r, 0));
    expect(seenByJob).toBeNull();
    expect(text(store.get('identity', 'soon'))).toBe('2');

    runner.runSoon(
      {
        commit: () => {
          throw new Error('store full');
        },
      },
      warn,
    );
    expect(log).toContain('warn store full');
    expect(() => runner.runSoon(writing(log, 'x'), warn)).toThrow(TypeError);
  });
});

/**
 * A model test of live push (spec/09-relay.md §5.2.1, delivery/mailbox-pump.ts): the real hub and
 * pumps against a model mailbox store, under random interleavings of commits by this process
 * (rows handed with the wake-up) and by other processes (a NOTIFY without rows, delivered late),
 * retry re-wakes, `wakeAll`, several of these in one turn of the event loop (the hub gathers
 * their wake-ups), reads that resolve late (their snapshot taken when issued, as on
 * SQLite, or when answered, as PostgreSQL may), acknowledgements over the socket and over HTTP,
 * full windows (count and bytes) with handed rows held for them (small limits, so that they
 * overflow), expiring rows and reconnects.
 *
 * Checked on every push: the seqs a connection receives strictly increase (so none twice), and
 * no stored, unexpired, unacknowledged row of the mailbox with a lower seq was left out. After
 * the run, with every read answered and every push acknowledged, the mailboxes are empty: every
 * row was eventually pushed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeliveryHub, type MailboxConnection } from '../src/delivery/hub.ts';
import { MailboxPump } from '../src/delivery/mailbox-pump.ts';
import type { CommittedMessage, DeviceAddress, RelayStorage, StoredMessage } from '../src/storage/types.ts';

const WHO = ['a', 'b'] as const;
type Who = (typeof WHO)[number];

const address = (who: Who): DeviceAddress => ({ accountKey: new Uint8Array(32).fill(who === 'a' ? 1 : 2), deviceId: 1 });
const SENDER: DeviceAddress = { accountKey: new Uint8Array(32).fill(9), deviceId: 1 };

interface Row {
  readonly who: Who;
  readonly message: StoredMessage;
  deleted: boolean;
}

type Action =
  | { t: 'commit'; own: boolean; counts: [number, number]; sizes: number[]; short: boolean }
  | { t: 'notify' }
  | { t: 'rewake'; who: Who }
  | { t: 'wakeAll' }
  | { t: 'answer'; who: Who; atIssue: boolean }
  | { t: 'ack'; who: Who; count: number; http: boolean }
  | { t: 'tick'; ms: number }
  | { t: 'reconnect'; who: Who };

const whoArb = fc.constantFrom<Who>(...WHO);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('commit' as const),
      own: fc.boolean(),
      counts: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
      sizes: fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 6, maxLength: 6 }),
      short: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ t: 'notify' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('rewake' as const), who: whoArb }) },
  { weight: 1, arbitrary: fc.constant({ t: 'wakeAll' as const }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('answer' as const), who: whoArb, atIssue: fc.boolean() }) },
  {
    weight: 4,
    arbitrary: fc.record({ t: fc.constant('ack' as const), who: whoArb, count: fc.integer({ min: 1, max: 4 }), http: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reconnect' as const), who: whoArb }) },
);

interface PendingRead {
  readonly who: Who;
  readonly snapshot: StoredMessage[];
  readonly afterSeq: number;
  readonly limit: number;
  readonly now: number;
  readonly resolve: (rows: StoredMessage[]) => void;
}

class World {
  now = 1_000;
  seq = 0;
  readonly rows: Row[] = [];
  readonly reads: PendingRead[] = [];
  /** Other processes' wake-ups on their way (LISTEN/NOTIFY), oldest first. */
  readonly notifies: DeviceAddress[][] = [];
  readonly hub = new DeliveryHub();
  readonly connections = new Map<Who, { pump: MailboxPump; pushed: number[]; inFlight: number[] }>();
  readonly maxInFlight: number;
  readonly maxInFlightBytes: number;
  readonly held: { readonly rows: number; readonly bytes: number };
  failure: string | undefined;

  constructor(maxInFlight: number, maxInFlightBytes: number, held = { rows: 64, bytes: 256 * 1024 }) {
    this.maxInFlight = maxInFlight;
    this.maxInFlightBytes = maxInFlightBytes;
    this.held = held;
  }

  /** What a read with these arguments returns from the store as it is now (the SQL of fetchMessages). */
  select(who: Who, afterSeq: number, limit: number, now: number): StoredMessage[] {
    return this.rows
      .filter((r) => r.who === who && !r.deleted && r.message.seq > afterSeq && r.message.expiresAt > now)
      .slice(0, limit)
      .map((r) => r.message);
  }

  storage(who: Who): RelayStorage {
    return {
      fetchMessages: (_address: DeviceAddress, afterSeq: number, limit: number, now: number) =>
        new Promise<StoredMessage[]>((resolve) => {
          this.reads.push({ who, snapshot: this.select(who, afterSeq, limit, now), afterSeq, limit, now, resolve });
        }),
      ackMessages: async (_address: DeviceAddress, seqs: readonly number[]) => this.delete(who, seqs),
    } as unknown as RelayStorage;
  }

  delete(who: Who, seqs: readonly number[]): number {
    let n = 0;
    for (const r of this.rows) {
      if (r.who === who && !r.deleted && seqs.includes(r.message.seq)) {
        r.deleted = true;
        n++;
      }
    }
    return n;
  }

  connect(who: Who): void {
    const state = { pump: undefined as unknown as MailboxPump, pushed: [] as number[], inFlight: [] as number[] };
    const pump = new MailboxPump({
      address: address(who),
      storage: this.storage(who),
      send: (frame) => this.pushed(who, state, JSON.parse(frame)),
      maxInFlight: this.maxInFlight,
      maxInFlightBytes: this.maxInFlightBytes,
      maxHeldRows: this.held.rows,
      maxHeldBytes: this.held.bytes,
      now: () => this.now,
      onError: (error) => {
        this.failure ??= `pump error: ${String(error)}`;
      },
    });
    state.pump = pump;
    this.connections.get(who)?.pump.stop();
    this.connections.set(who, state);
    const connection: MailboxConnection = {
      address: address(who),
      wake: (rows) => pump.wake(rows),
      acknowledged: (seqs) => pump.forget(seqs),
      close: () => pump.stop(),
    };
    this.hub.attach(connection);
    pump.wake();
  }

  pushed(who: Who, state: { pushed: number[]; inFlight: number[] }, frame: { type: string; seq?: number }): void {
    if (frame.type !== 'envelope') return;
    const seq = frame.seq as number;
    const last = state.pushed.at(-1) ?? 0;
    if (seq <= last) this.failure ??= `${who}: pushed seq ${seq} after ${last} on one connection`;
    // Every stored, unexpired, unacknowledged row below it went out on this connection before it.
    const missed = this.rows.find(
      (r) => r.who === who && !r.deleted && r.message.seq < seq && r.message.expiresAt > this.now && !state.pushed.includes(r.message.seq),
    );
    if (missed) this.failure ??= `${who}: pushed seq ${seq} but never seq ${missed.message.seq} on this connection`;
    state.pushed.push(seq);
    state.inFlight.push(seq);
  }

  commit(a: Extract<Action, { t: 'commit' }>): void {
    const handed: CommittedMessage[] = [];
    const devices: DeviceAddress[] = [];
    let size = 0;
    for (const who of WHO) {
      const n = a.counts[who === 'a' ? 0 : 1];
      if (n > 0) devices.push(address(who));
      for (let i = 0; i < n; i++) {
        // As the storages compute it: the newest unexpired row of the mailbox before this one.
        const previousSeq = this.rows
          .filter((r) => r.who === who && !r.deleted && r.message.expiresAt > this.now)
          .reduce((m, r) => Math.max(m, r.message.seq), 0);
        const message: StoredMessage = {
          seq: ++this.seq,
          sender: SENDER,
          clientId: `c${this.seq}`,
          serverTimestamp: this.now,
          expiresAt: this.now + (a.short ? 20 : 1_000_000),
          envelope: new Uint8Array(a.sizes[size++ % a.sizes.length] as number),
        };
        this.rows.push({ who, message, deleted: false });
        handed.push({ recipient: address(who), previousSeq, message });
      }
    }
    if (devices.length === 0) return;
    if (a.own) this.hub.notify(devices, handed);
    else this.notifies.push(devices);
  }

  answer(who: Who, atIssue: boolean): void {
    const i = this.reads.findIndex((r) => r.who === who);
    if (i < 0) return;
    const [read] = this.reads.splice(i, 1) as [PendingRead];
    read.resolve(atIssue ? read.snapshot : this.select(who, read.afterSeq, read.limit, read.now));
  }

  ack(who: Who, count: number, http: boolean): void {
    const state = this.connections.get(who);
    if (!state) return;
    const seqs = state.inFlight.splice(0, count);
    if (seqs.length === 0) return;
    if (http) {
      this.delete(who, seqs);
      this.hub.acknowledged(address(who), seqs);
    } else void state.pump.ack(seqs);
  }

  /** Runs one action, synchronously: actions run without a `settle()` between them share a turn (the hub gathers their wake-ups). */
  step(a: Action): void {
    switch (a.t) {
      case 'commit':
        this.commit(a);
        break;
      case 'notify': {
        const devices = this.notifies.shift();
        if (devices) this.hub.notify(devices);
        break;
      }
      case 'rewake':
        this.hub.notify([address(a.who)]);
        break;
      case 'wakeAll':
        this.hub.wakeAll();
        break;
      case 'answer':
        this.answer(a.who, a.atIssue);
        break;
      case 'ack':
        this.ack(a.who, a.count, a.http);
        break;
      case 'tick':
        this.now += a.ms;
        break;
      case 'reconnect':
        this.connect(a.who);
        break;
    }
  }

  /** Answers every read, delivers every wake-up and acknowledges every push until nothing moves. */
  async drain(): Promise<void> {
    for (let round = 0; round < 10_000; round++) {
      // Wake-ups gathered in the last turn go out first (the hub's microtask), then what they caused.
      await settle();
      let moved = false;
      while (this.notifies.length > 0) {
        this.hub.notify(this.notifies.shift() as DeviceAddress[]);
        moved = true;
      }
      for (const read of this.reads.splice(0)) {
        read.resolve(this.select(read.who, read.afterSeq, read.limit, read.now));
        moved = true;
      }
      for (const who of WHO) {
        const state = this.connections.get(who);
        if (state && state.inFlight.length > 0) {
          void state.pump.ack(state.inFlight.splice(0));
          moved = true;
        }
      }
      if (!moved) return;
    }
    this.failure ??= 'did not settle';
  }

  /** Stored rows that are unexpired now and were never delivered and acknowledged. */
  left(): number[] {
    return this.rows.filter((r) => !r.deleted && r.message.expiresAt > this.now).map((r) => r.message.seq);
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('mailbox pump: live push against a model store', () => {
  it('pushes each row once per connection, in seq order, without gaps, and eventually all of them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 40, max: 400 }),
        fc.record({ rows: fc.integer({ min: 0, max: 4 }), bytes: fc.integer({ min: 1, max: 300 }) }),
        fc.array(fc.tuple(action, fc.boolean()), { minLength: 1, maxLength: 60 }),
        async (maxInFlight, maxInFlightBytes, held, actions) => {
          const world = new World(maxInFlight, maxInFlightBytes, held);
          world.connect('a');
          world.connect('b');
          await settle();
          for (const [a, settleAfter] of actions) {
            world.step(a);
            if (settleAfter) await settle();
            if (world.failure) break;
          }
          if (!world.failure) await world.drain();
          expect(world.failure).toBeUndefined();
          expect(world.left()).toEqual([]);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('reads nothing back while caught up and handed every row (the point of live push)', async () => {
    const world = new World(4, 1_000);
    const reads: string[] = [];
    const storage = world.storage('a');
    const counted = {
      ...storage,
      fetchMessages: (...args: Parameters<RelayStorage['fetchMessages']>) => {
        reads.push('read');
        return storage.fetchMessages(...args);
      },
    } as RelayStorage;
    const pushed: number[] = [];
    const pump = new MailboxPump({
      address: address('a'),
      storage: counted,
      send: (frame) => {
        const f = JSON.parse(frame) as { type: string; seq?: number };
        if (f.type === 'envelope') pushed.push(f.seq as number);
      },
      maxInFlight: 4,
      maxInFlightBytes: 1_000,
      now: () => world.now,
    });
    world.hub.attach({ address: address('a'), wake: (rows) => pump.wake(rows), acknowledged: () => {}, close: () => {} });
    pump.wake();
    world.answer('a', false); // the empty backlog: drained
    await settle();
    expect(reads).toHaveLength(1);
    for (let i = 0; i < 20; i++) {
      world.commit({ t: 'commit', own: true, counts: [2, 1], sizes: [10, 20, 30, 40, 50, 60], short: false });
      await pump.ack(pushed.slice(-2));
      await settle();
    }
    expect(pushed).toHaveLength(40);
    expect(reads).toHaveLength(1);
  });
});

// Acknowledgements gathered while a delete is being written (delivery/mailbox-pump.ts `ack`,
// spec/09-relay.md §5.2): one delete for all that came meanwhile, every seq deleted once, the
// deleted count summed exactly once, bounded, and written also after the connection closed.
// Never more than one delete of a connection in storage: what does not fit waits, reading held.
import { describe, expect, it } from 'vitest';
import {
  AckFloodError,
  MAX_ACK_DELETES_PER_CONNECTION,
  MAX_GATHERED_ACK_SEQS,
  MAX_QUEUED_ACK_SEQS,
  MailboxPump,
} from '../src/delivery/mailbox-pump.ts';
import type { DeviceAddress, RelayStorage } from '../src/storage/types.ts';

const address: DeviceAddress = { accountKey: new Uint8Array(32).fill(1), deviceId: 1 };

/** A storage whose deletes wait until released, recording each call's seqs. */
function gatedStorage() {
  const calls: number[][] = [];
  const gates: { release: () => void; fail: (e: Error) => void }[] = [];
  const stored = new Set<number>(Array.from({ length: 5000 }, (_, i) => i + 1));
  const storage = {
    ackMessages: (_a: DeviceAddress, seqs: readonly number[]) => {
      calls.push([...seqs]);
      return new Promise<number>((resolve, reject) => {
        gates.push({
          release: () => resolve(seqs.filter((s) => stored.delete(s)).length),
          fail: reject,
        });
      });
    },
  } as unknown as RelayStorage;
  return { storage, calls, gates, stored };
}

const pumpOn = (storage: RelayStorage, holdReading?: (hold: boolean) => void) =>
  new MailboxPump({
    address,
    storage,
    send: () => {},
    maxInFlight: 256,
    maxInFlightBytes: 1 << 23,
    now: () => 0,
    ...(holdReading ? { holdReading } : {}),
  });

const seqsFrom = (first: number, n: number) => Array.from({ length: n }, (_, i) => first + i);

const tick = () => new Promise((r) => setImmediate(r));

describe('acknowledgements gathered while a delete is written', () => {
  it('deletes what came meanwhile in one write, and counts each deleted envelope once', async () => {
    const { storage, calls, gates, stored } = gatedStorage();
    const pump = pumpOn(storage);
    const first = pump.ack([1, 2]);
    const second = pump.ack([3]);
    const third = pump.ack([4, 5, 3]); // a repeat, as a device may send
    expect(calls).toEqual([[1, 2]]);
    gates[0]?.release();
    expect(await first).toBe(2);
    await tick();
    expect(calls).toEqual([
      [1, 2],
      [3, 4, 5, 3],
    ]);
    gates[1]?.release();
    const counts = await Promise.all([second, third]);
    expect(counts[0] + counts[1]).toBe(3);
    expect([1, 2, 3, 4, 5].some((s) => stored.has(s))).toBe(false);
    // Nothing in flight: the next one is written at once.
    void pump.ack([6]);
    expect(calls).toHaveLength(3);
  });

  it('an acknowledgement that would pass MAX_GATHERED_ACK_SEQS waits in a batch of its own, with reading held until there is room', async () => {
    // Before: it was written at once beside the delete in progress, so a flood of full ack frames
    // put one write per frame into the group commit (test/ack-flood.test.ts).
    const { storage, calls, gates } = gatedStorage();
    const holds: boolean[] = [];
    const pump = pumpOn(storage, (hold) => holds.push(hold));
    const first = pump.ack([1]);
    const gathered = pump.ack([2]);
    const many = seqsFrom(3, MAX_GATHERED_ACK_SEQS);
    const alone = pump.ack(many); // would make MAX + 1 in the gathered batch
    const after = pump.ack([many.length + 3]); // the full batch has no room: one more after it
    expect(calls).toHaveLength(MAX_ACK_DELETES_PER_CONNECTION);
    expect(holds).toEqual([true]);
    gates[0]?.release();
    expect(await first).toBe(1);
    await tick();
    // The gathered batch goes next; two still wait (one full), so reading stays held.
    expect(calls).toEqual([[1], [2]]);
    expect(holds).toEqual([true]);
    gates[1]?.release();
    expect(await gathered).toBe(1);
    await tick();
    // The full batch is being written; one small batch waits: reading restarts.
    expect(calls[2]).toEqual(many);
    expect(holds).toEqual([true, false]);
    gates[2]?.release();
    expect(await alone).toBe(MAX_GATHERED_ACK_SEQS);
    await tick();
    expect(calls[3]).toEqual([many.length + 3]);
    expect(calls).toHaveLength(4);
    gates[3]?.release();
    expect(await after).toBe(1);
  });

  it('holds reading as soon as the gathered batch is full, even without an ack that does not fit', async () => {
    const { storage, gates } = gatedStorage();
    const holds: boolean[] = [];
    const pump = pumpOn(storage, (hold) => holds.push(hold));
    void pump.ack([1]);
    void pump.ack(seqsFrom(2, MAX_GATHERED_ACK_SEQS - 1));
    expect(holds).toEqual([]);
    void pump.ack([MAX_GATHERED_ACK_SEQS + 1]);
    expect(holds).toEqual([true]);
    gates[0]?.release();
    await tick();
    expect(holds).toEqual([true, false]);
  });

  it('refuses acknowledgements past MAX_QUEUED_ACK_SEQS waiting (reading that did not stop) with ACK_FLOOD, and deletes the rest', async () => {
    const { storage, calls, gates } = gatedStorage();
    // A connection that ignores the hold: every frame of a flood reaches the pump.
    const pump = pumpOn(storage, () => {});
    void pump.ack([1]);
    const waiting: Promise<number>[] = [];
    for (let i = 0; i < MAX_QUEUED_ACK_SEQS / MAX_GATHERED_ACK_SEQS; i++) {
      waiting.push(pump.ack(seqsFrom(2 + i * MAX_GATHERED_ACK_SEQS, MAX_GATHERED_ACK_SEQS)));
    }
    // Thrown at once, so the connection closes before ws hands over the next frame it had read.
    expect(() => pump.ack([MAX_QUEUED_ACK_SEQS + 2])).toThrow(AckFloodError);
    expect(() => pump.ack([MAX_QUEUED_ACK_SEQS + 2])).toThrow(expect.objectContaining({ code: 'ACK_FLOOD' }));
    expect(calls).toHaveLength(1);
    // What was taken is still deleted, one delete at a time, the refused seq not among it.
    for (let n = 0; n <= waiting.length; n++) {
      expect(calls).toHaveLength(n + 1);
      gates[n]?.release();
      await tick();
    }
    const counts = await Promise.all(waiting);
    // Every taken seq was written; of them, 2..5000 were stored (gatedStorage; seq 1 went first).
    expect(calls.flat()).toEqual(seqsFrom(1, MAX_QUEUED_ACK_SEQS + 1));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4999);
  });

  it('still deletes what was gathered when the connection closed before the delete in progress finished', async () => {
    const { storage, calls, gates, stored } = gatedStorage();
    const pump = pumpOn(storage);
    void pump.ack([1]);
    const later = pump.ack([2, 3]);
    pump.stop();
    gates[0]?.release();
    await tick();
    expect(calls[1]).toEqual([2, 3]);
    gates[1]?.release();
    expect(await later).toBe(2);
    expect(stored.has(2) || stored.has(3)).toBe(false);
  });

  it('a failed gathered delete rejects every acknowledgement it took, and later ones are written again', async () => {
    const { storage, calls, gates } = gatedStorage();
    const pump = pumpOn(storage);
    void pump.ack([1]);
    const a = pump.ack([2]);
    const b = pump.ack([3]);
    gates[0]?.release();
    await tick();
    gates[1]?.fail(new Error('disk'));
    await expect(a).rejects.toThrow('disk');
    await expect(b).rejects.toThrow('disk');
    void pump.ack([4]);
    expect(calls.at(-1)).toEqual([4]);
  });
});

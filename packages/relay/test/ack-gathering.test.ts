// Acknowledgements gathered while a delete is being written (delivery/mailbox-pump.ts `ack`,
// spec/09-relay.md §5.2): one delete for all that came meanwhile, every seq deleted once, the
// deleted count summed exactly once, bounded, and written also after the connection closed.
import { describe, expect, it } from 'vitest';
import { MAX_GATHERED_ACK_SEQS, MailboxPump } from '../src/delivery/mailbox-pump.ts';
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

const pumpOn = (storage: RelayStorage) =>
  new MailboxPump({ address, storage, send: () => {}, maxInFlight: 256, maxInFlightBytes: 1 << 23, now: () => 0 });

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

  it('writes an acknowledgement that would pass MAX_GATHERED_ACK_SEQS on its own at once', async () => {
    const { storage, calls, gates } = gatedStorage();
    const pump = pumpOn(storage);
    void pump.ack([1]);
    const many = Array.from({ length: MAX_GATHERED_ACK_SEQS }, (_, i) => i + 2);
    void pump.ack([many.length + 2]); // gathered
    void pump.ack(many); // would make MAX + 1: written now, beside the first
    expect(calls).toHaveLength(2);
    expect(calls[1]).toHaveLength(MAX_GATHERED_ACK_SEQS);
    for (const g of gates) g.release();
    await tick();
    await tick();
    // The gathered one follows the first write that finished.
    expect(calls).toHaveLength(3);
    expect(calls[2]).toEqual([many.length + 2]);
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

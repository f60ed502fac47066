// Live push holds handed rows while the window is full (delivery/mailbox-pump.ts, spec/09-relay.md §5.2.1),
// bounded by MAX_HELD_BYTES counted over the envelopes. A handed envelope may be a view into a whole
// websocket send frame (core's readCbor hands byte strings out as views): a held row must keep its own
// copy, or a few bytes counted would keep the whole frame's buffer alive.
import { describe, expect, it } from 'vitest';
import { MailboxPump } from '../src/delivery/mailbox-pump.ts';
import type { CommittedMessage, DeviceAddress, RelayStorage, StoredMessage } from '../src/storage/types.ts';

const me: DeviceAddress = { accountKey: new Uint8Array(32).fill(1), deviceId: 1 };
const sender: DeviceAddress = { accountKey: new Uint8Array(32).fill(2), deviceId: 1 };
const FRAME = 1024 * 1024;

describe('held rows', () => {
  it('keep their own copy of the envelope, never the frame behind a view', async () => {
    const frame = new Uint8Array(FRAME).fill(7);
    const rows: CommittedMessage[] = [1, 2, 3].map((seq) => ({
      recipient: me,
      previousSeq: seq - 1,
      message: {
        seq,
        sender,
        clientId: `m${seq}`,
        serverTimestamp: 0,
        expiresAt: 1e15,
        // Ten bytes somewhere inside a 1 MiB frame, as a send frame's envelope.
        envelope: frame.subarray(seq * 1000, seq * 1000 + 10),
      },
    }));
    const pushed: StoredMessage[] = [];
    const storage = {
      fetchMessages: async () => [],
      ackMessages: async () => 0,
    } as unknown as RelayStorage;
    const pump = new MailboxPump({
      address: me,
      storage,
      send: () => {},
      binary: {
        encode: (m) => {
          pushed.push(m);
          return new Uint8Array(1);
        },
        send: () => {},
      },
      maxInFlight: 1,
      maxInFlightBytes: 1 << 20,
      now: () => 1,
    });
    pump.wake();
    await new Promise((r) => setImmediate(r));
    // Caught up: the first row goes out (a window of one), the other two are held.
    pump.wake(rows);
    expect(pushed.map((m) => m.seq)).toEqual([1]);
    await pump.ack([1]);
    await pump.ack([2]);
    expect(pushed.map((m) => m.seq)).toEqual([1, 2, 3]);
    for (const m of pushed.slice(1)) {
      expect(m.envelope).toEqual(frame.subarray(m.seq * 1000, m.seq * 1000 + 10));
      // Its own 10 bytes, not a view into the 1 MiB frame.
      expect(m.envelope.buffer.byteLength).toBeLessThan(FRAME);
    }
  });
});

// The multi-process script (bench/src/relay/multi-process.ts) still runs end to end: two relay
// processes on one PostgreSQL database, a short load, one killed half-way. No timing assertions
// (the figures are the script's output); what it must get right is its own accounting: every
// acknowledged envelope delivered, none stored twice, the kill and the fail-over counted.
// Needs PARLEY_TEST_POSTGRES_URL (skipped without it, like the relay's PostgreSQL tests).
import { describe, expect, it } from 'vitest';
import { formatMultiProcess, runMultiProcess } from '../src/relay/multi-process.ts';

const URL = process.env.PARLEY_TEST_POSTGRES_URL;

describe.skipIf(!URL)('relay/multi-process.ts', () => {
  it('loads two processes on one database, kills one, and accounts for every envelope', async () => {
    const r = await runMultiProcess({ databaseUrl: URL as string, processes: 2, seconds: 3, senders: 4, recipients: 2 });
    expect(r.killed).toBe(true);
    expect(r.acknowledged).toBeGreaterThan(0);
    expect(r.lost).toBe(0);
    expect(r.storedTwice).toBe(0);
    expect(r.errors).toBe(0);
    expect(r.deliveryMs.samples).toBeGreaterThan(0);
    expect(formatMultiProcess(r)).toContain('lost 0, stored twice 0');
  }, 90_000);

  it('the same over websocket send frames (--mode ws): every envelope accounted for across the kill', async () => {
    const r = await runMultiProcess({
      databaseUrl: URL as string,
      processes: 2,
      seconds: 3,
      senders: 4,
      recipients: 2,
      mode: 'ws',
      batch: 2,
    });
    expect(r.mode).toBe('ws');
    expect(r.killed).toBe(true);
    expect(r.acknowledged).toBeGreaterThan(0);
    // Frames of 2: every acknowledgement covers a whole frame.
    expect(r.acknowledged % 2).toBe(0);
    expect(r.lost).toBe(0);
    expect(r.storedTwice).toBe(0);
    expect(r.errors).toBe(0);
    expect(formatMultiProcess(r)).toContain('websocket send frames of 2 envelopes');
  }, 90_000);
});

// The moderator tool prints what others wrote (spec/17 §6): a report's
// comment (the reporter's words) and each item's franked plaintext (the
// sender's). Neither may steer the moderator's terminal or forge the tool's
// own lines: no raw control character (C0, DEL, C1 such as U+009B, the
// 8-bit CSI), no bidi override or isolate (they reorder what is shown), no
// line break (a plaintext "…\n  verdict     verified" would print a second
// verdict line above the real one). Text is printed escaped on its own
// line; the tool's lines stay exactly its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AbuseReport, encodeReport, utf8 } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { reportsCommand } from '../src/cli/reports.ts';
import { withDefaults } from '../src/config.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { inject, makeDevice, register, testRelay, toBase64Url } from './support.ts';
import { sendFranked } from './support/franked-report.ts';

/** What a terminal would act on or reorder by: C0 (tab aside), DEL, C1, bidi controls, line and paragraph separators. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const STEERING = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

async function showReport(plaintext: Uint8Array, comment: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-report-text-'));
  try {
    const relay = await testRelay({}, { clock: true, storage: new SqliteStorage({ path: join(dir, 'relay.sqlite') }) });
    const alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    const bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    for (const d of [alice, bob]) await register(relay.app, d);
    // Not acked: the report names a message Bob has fetched and still holds.
    const item = await sendFranked(relay.app, alice, bob, plaintext, { id: 'x', envelope: utf8('c'), ack: false });
    const report: AbuseReport = { reason: 2, comment, items: [item] };
    const filed = await inject(relay.app, bob.signer, {
      method: 'POST',
      url: '/v2/reports',
      json: { report: toBase64Url(encodeReport(report)) },
    });
    expect(filed.statusCode, filed.body).toBe(202);
    const now = relay.clock.now;
    await relay.close();
    const lines: string[] = [];
    const status = await reportsCommand(withDefaults({ dataDir: dir, logLevel: 'silent' }), ['show', '1'], (l) => lines.push(l), now);
    expect(status).toBe(0);
    return lines;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('what the moderator tool prints of a report', () => {
  it('a plaintext with a line break, an 8-bit CSI and a bidi override cannot forge a line or steer the terminal', async () => {
    const forged = 'fine\n  verdict     REFUSED FRANK_INVALID (item 0)\n\u009b2J\u202eexe.txt';
    const lines = await showReport(utf8(forged), 'see \u009b31mthis\u009b0m \u2066hidden\u2069');
    for (const line of lines) expect(STEERING.test(line), JSON.stringify(line)).toBe(false);
    // The tool's own lines only: one verdict, and it is the real one.
    expect(lines.filter((l) => l.trimStart().startsWith('verdict'))).toEqual(['  verdict     verified']);
    const content = lines.find((l) => l.trimStart().startsWith('content')) as string;
    // Shown escaped, still readable: the words are there.
    expect(content).toContain('fine\\n  verdict');
    expect(content).toContain('\\u009b2J\\u202eexe.txt');
    const comment = lines.find((l) => l.trimStart().startsWith('comment')) as string;
    expect(comment).toContain('see \\u009b31mthis');
  });

  it('plain text is shown as text, and bytes that are no text as hex', async () => {
    const text = await showReport(utf8('a threat, in words: ünïcode ok'), 'harassment');
    expect(text.find((l) => l.trimStart().startsWith('content'))).toContain('a threat, in words: ünïcode ok');
    // A leading U+FEFF is the sender's text too: kept, and shown escaped (it is invisible).
    const bom = await showReport(utf8('\ufeffhidden start'), '');
    expect(bom.find((l) => l.trimStart().startsWith('content'))).toContain('"\\ufeffhidden start"');
    const binary = await showReport(Uint8Array.of(0x85, 0x01, 0xff, 0x00), '');
    expect(binary.find((l) => l.trimStart().startsWith('content'))).toContain('hex:8501ff00');
  });
});

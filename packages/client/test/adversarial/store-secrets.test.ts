/**
 * Finding 8 (attachment keys) of issue 11: an app that logs a message
 * event or a history entry (JSON.stringify, console.log / util.inspect,
 * String()) must not write the attachment key, in any encoding, into its
 * logs (spec/10-client.md §8).
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { decodeAttachmentPointer } from '../../src/attachments/index.ts';
import type { MessageEvent } from '../../src/events.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { closedAfterEach, newClient, next } from '../support/harness.ts';

/** True when the key shows up in `text`: as hex, base64(url), or as a run of byte values (JSON, inspect and String() of bytes). */
function leaks(text: string, key: Uint8Array): boolean {
  const b = Buffer.from(key);
  // The middle 24 bytes: base64 of a run that starts off a 3-byte boundary still contains them.
  const core = b.subarray(3, 27);
  if ([b.toString('hex'), core.toString('base64'), core.toString('base64url')].some((n) => text.includes(n))) return true;
  // JSON writes bytes as {"0":n,...}: drop the indices; then every number in order.
  const numbers = (text.replace(/"\d+":/g, '').match(/\d+/g) ?? []).map(Number);
  const run = [...key.subarray(0, 12)];
  for (let i = 0; i + run.length <= numbers.length; i++) if (run.every((v, j) => numbers[i + j] === v)) return true;
  return false;
}

function renderings(value: unknown): Record<string, string> {
  return {
    json: JSON.stringify(value) ?? '',
    inspect: inspect(value, { depth: 20, maxArrayLength: 10_000 }),
    string: String((value as { body?: { attachment?: { pointer?: unknown } } }).body?.attachment?.pointer ?? ''),
  };
}

describe('store: no attachment key in what an app logs', () => {
  const track = closedAfterEach();

  it('message events and history entries render without the key bytes', async () => {
    const relay = new FakeRelay();
    const alice = track(await newClient(relay));
    const bob = track(await newClient(relay));
    const file = new TextEncoder().encode('a small file');
    const arrived = next(bob, 'message', (m) => m.body.type === 'attachment');
    await alice.sendFile(bob.accountId, { stream: new Blob([file]).stream(), size: file.length, fileName: 'f.txt' });
    const event: MessageEvent = await arrived;
    if (event.body.type !== 'attachment') throw new Error('expected an attachment');
    const key = decodeAttachmentPointer(event.body.attachment.pointer).key;

    const stored = bob.history(alice.accountId);
    const sent = alice.history(bob.accountId);
    const found: string[] = [];
    for (const [name, value] of Object.entries({ event, stored: stored[0], sent: sent[0], storedList: stored })) {
      for (const [how, text] of Object.entries(renderings(value))) if (leaks(text, key)) found.push(`${name} via ${how}`);
    }
    expect(found).toEqual([]);
    // The check itself finds the key where it is (so an empty list means something).
    expect(leaks(JSON.stringify([...key]), key)).toBe(true);
    expect(leaks(inspect(new Uint8Array(key)), key)).toBe(true);

    // The pointer still works as bytes: the download decrypts.
    const chunks: Uint8Array[] = [];
    for await (const c of bob.openAttachment(event.body.attachment) as unknown as AsyncIterable<Uint8Array>) chunks.push(c);
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(file));
  });
});

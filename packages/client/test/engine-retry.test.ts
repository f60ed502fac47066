/**
 * The sender's half of self-healing, on its own (spec/10-client.md §6):
 * who may have a message again, and how often.
 */
import { Account, defaultProvider, toHex } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { encodeContent } from '../src/content/content.ts';
import { type Context, DEFAULT_OPTIONS, Pending } from '../src/engine/context.ts';
import { answerRetry } from '../src/engine/retry.ts';
import { Emitter } from '../src/events.ts';
import { clientIdFor } from '../src/state/ids.ts';
import { listQueued } from '../src/state/outbox.ts';
import { getSent, putSent } from '../src/state/sent-log.ts';
import { MemoryStore } from '../src/store/memory.ts';

function context(): Context {
  const account = Account.generate();
  const device = account.createDevice(1);
  const clock = () => 1_000_000;
  return {
    store: new MemoryStore({ clock }),
    provider: defaultProvider(),
    clock,
    relay: {} as Context['relay'],
    device,
    account,
    self: { accountKey: account.publicKey, deviceId: 1 },
    events: new Emitter(),
    options: DEFAULT_OPTIONS,
  };
}

describe('answering retry requests', () => {
  const bob = Account.generate();
  const bobPhone = bob.createDevice(1).certificate;
  const bobLaptop = bob.createDevice(2).certificate;
  const eve = Account.generate().createDevice(1).certificate;
  const messageId = new Uint8Array(16).fill(7);
  const content = encodeContent({ messageId, sentAt: 1, expireTimer: 0, group: null, body: { type: 'text', text: 'x' }, deviceList: null });

  function withSent() {
    const ctx = context();
    putSent(ctx.store, {
      messageId,
      toContacts: content,
      toOwnDevices: null,
      recipients: [{ accountKey: bob.publicKey, deviceId: 1 }],
      resent: [],
      sentAt: 999_000,
    });
    return ctx;
  }

  it('re-sends to a recipient device once, under a fresh client id, to all of its account', () => {
    const ctx = withSent();
    answerRetry(ctx, bobPhone, clientIdFor(messageId), new Pending());
    const queued = listQueued(ctx.store);
    expect(queued).toHaveLength(1);
    expect(queued[0]?.entry).toMatchObject({ attempt: 1, keepForRetry: false });
    expect(toHex(queued[0]?.entry.toContacts ?? new Uint8Array())).toBe(toHex(content));
    expect(queued[0]?.entry.accounts).toEqual([bob.publicKey]);
    expect(getSent(ctx.store, messageId)?.resent).toEqual([{ accountKey: bob.publicKey, deviceId: 1 }]);
    // A second request from the same device (or for a re-sent client id) changes nothing.
    answerRetry(ctx, bobPhone, clientIdFor(messageId), new Pending());
    answerRetry(ctx, bobPhone, clientIdFor(messageId, 1), new Pending());
    expect(listQueued(ctx.store)).toHaveLength(1);
  });

  it('ignores a device the message was not sent to, even of the same account', () => {
    const ctx = withSent();
    answerRetry(ctx, eve, clientIdFor(messageId), new Pending());
    answerRetry(ctx, bobLaptop, clientIdFor(messageId), new Pending());
    expect(listQueued(ctx.store)).toEqual([]);
  });

  it('ignores unknown, expired and malformed ids', () => {
    const ctx = withSent();
    answerRetry(ctx, bobPhone, clientIdFor(new Uint8Array(16)), new Pending());
    answerRetry(ctx, bobPhone, 'not-a-client-id', new Pending());
    answerRetry(ctx, bobPhone, `${clientIdFor(messageId)}.r0`, new Pending());
    expect(listQueued(ctx.store)).toEqual([]);
    const later = { ...ctx, clock: () => 1_000_000 + 8 * 24 * 3600 * 1000 };
    const store = new MemoryStore({ clock: later.clock });
    putSent(store, {
      messageId,
      toContacts: content,
      toOwnDevices: null,
      recipients: [{ accountKey: bob.publicKey, deviceId: 1 }],
      resent: [],
      sentAt: 0,
    });
    answerRetry({ ...later, store }, bobPhone, clientIdFor(messageId), new Pending());
    expect(listQueued(store)).toEqual([]);
  });
});

// Records written before franking tags existed still read (spec/10-client.md
// §7.2): an outbox entry with 5-field envelopes and 12 fields reads with no
// tags, a dead letter with 10 fields reads with no delivery record; the new
// forms round-trip their tags and records.
import { encodeCbor } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { timestampToBytes } from '../src/content/fields.ts';
import { getDeadLetter, parkEnvelope } from '../src/engine/dead-letters.ts';
import { type OutboxEntry, enqueue, getQueued } from '../src/state/outbox.ts';
import { encodeRecord } from '../src/state/record.ts';
import { MemoryStore } from '../src/store/memory.ts';

const account = new Uint8Array(32).fill(7);
const messageId = new Uint8Array(16).fill(1);
const envelope = new Uint8Array([0x84, 2, 2, 0]);
const tag = new Uint8Array(32).fill(9);

describe('outbox entries', () => {
  it('an entry written before the tags (12 fields, 5-field envelopes) reads with none', () => {
    const store = new MemoryStore();
    const old = encodeRecord('parley/client-outbox', [
      messageId,
      0,
      [account],
      new Uint8Array([1]),
      null,
      null,
      null,
      true,
      null,
      null,
      [[account, 1, 'c1', envelope, null]],
      timestampToBytes(1000),
    ]);
    store.put('outbox', '000000000001', old);
    const entry = getQueued(store, '000000000001');
    expect(entry?.envelopes[0]?.envelope).toEqual(envelope);
    expect(entry?.envelopes[0]?.frankingTag).toBeUndefined();
    expect(entry?.groupFrankingTag ?? null).toBeNull();
  });

  it('a new entry keeps each envelope tag and the group tag', () => {
    const store = new MemoryStore();
    const entry: OutboxEntry = {
      messageId,
      attempt: 0,
      accounts: [account],
      toContacts: null,
      toOwnDevices: null,
      groupMessage: envelope,
      groupFrankingTag: tag,
      freshSession: null,
      keepForRetry: true,
      conversation: null,
      ttlSeconds: null,
      envelopes: [{ recipient: { accountKey: account, deviceId: 1 }, clientId: 'c1', envelope, frankingTag: tag }],
      createdAt: 1000,
    };
    const key = enqueue(store, entry);
    const read = getQueued(store, key);
    expect(read?.envelopes[0]?.frankingTag).toEqual(tag);
    expect(read?.groupFrankingTag).toEqual(tag);
  });
});

describe('dead letters', () => {
  it('a letter parked before delivery records (10 fields) reads with none', () => {
    const store = new MemoryStore();
    const id = 'A'.repeat(24);
    const old = encodeCbor([1, id, account, 1, 'c1', timestampToBytes(5), envelope, 'SQLITE_FULL', 10, timestampToBytes(6)]);
    store.put('dead-letters', `d/${id}`, old);
    const letter = getDeadLetter(store, id);
    expect(letter?.envelope).toEqual(envelope);
    expect(letter?.delivery).toBeNull();
  });

  it('a parked v2 envelope keeps its delivery record, so a retry still has its tag', () => {
    const store = new MemoryStore();
    const id = 'B'.repeat(24);
    const delivery = {
      envelopeId: new Uint8Array(16).fill(3),
      acceptedAt: 1_780_000_000_000,
      frankKeyId: 20_601,
      frank: tag,
      frankingTag: tag,
    };
    parkEnvelope(
      store,
      id,
      { seq: 1, sender: { accountKey: account, deviceId: 1 }, clientId: 'c1', serverTimestamp: 5, expiresAt: 6, envelope, delivery },
      'SQLITE_FULL',
      10,
      Date.now(),
    );
    expect(getDeadLetter(store, id)?.delivery).toEqual(delivery);
  });
});

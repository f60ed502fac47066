// The SDK's report flow against the real relay (spec/14-franking.md §6,
// spec/10-client.md §7.6): `reportable`, `reportPreview` and `report` over
// the franked rows a receiving client stores, verified by the relay's report
// route and its file check.
//
// The franked messages come from a raw sender device: it sends envelopes
// with a franking tag through the real relay, the relay franks them, and
// Bob's rows are written from the delivery records exactly as
// engine/apply.ts writes them for a received v2 message (same history key,
// same expiry). So every delivery record and frank here is the relay's own.
import { FRANK_KEY_PERIOD_MS, FRANK_KEY_RETENTION_MS, decodeReport, defaultProvider, encodeReport, toHex } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { ReportDialog } from '../src/cli/report.ts';
import { ParleyClient } from '../src/client.ts';
import { DEFAULT_OPTIONS } from '../src/engine/context.ts';
import { decodeContent, encodeContent } from '../src/content/content.ts';
import { loadIdentity } from '../src/state/identity.ts';
import { encryptAttachment } from '../src/attachments/index.ts';
import { encodeAttachmentPointer } from '../src/attachments/pointer.ts';
import { attachmentInfo } from '../src/content/content.ts';
import { connectRelayNode } from '../src/node.ts';
import { isReportError } from '../src/reports/errors.ts';
import { MessageStatus, addMessage } from '../src/state/history.ts';
import { accountId, messageIdText } from '../src/state/ids.ts';
import { MemoryStore } from '../src/store/memory.ts';
import {
  type ContentInput,
  type FrankedRecipient,
  type RawDevice,
  deliverFranked,
  queuedReports,
  rawDevice as rawSender,
  recipientOf,
  textContent,
} from './support/franked.ts';
import { TEST_OPTIONS, until } from './support/harness.ts';
import { loopbackRelay } from './support/loopback-relay.ts';
import { parseConversationId } from '../src/state/conversation-id.ts';

const b = defaultProvider().backend;
const relay = loopbackRelay('reports', { scope: 'all' });
/** The client's clock: moved forward to expire messages and frank keys. */
const clock = { now: Date.now() };

/** Bob: a real client (not started: its mailbox is read by the helper, as the engine would read it). */
async function recipient() {
  const store = new MemoryStore({ clock: () => clock.now });
  const client = await ParleyClient.createAccount({
    store,
    relay: connectRelayNode(relay.url),
    clock: () => clock.now,
    options: TEST_OPTIONS,
  });
  return { client, ...recipientOf(store, relay.url) };
}

const rawDevice = () => rawSender(relay.url);
const deliver = (from: RawDevice, to: FrankedRecipient, content: ContentInput) => deliverFranked(from, to, content, clock.now++);
const text = textContent;

/** The queued reports' decoded items. */
const queued = () => queuedReports(relay.dbPath);

describe('client.report through the real relay', () => {
  it('reports a text with picked context: the preview is exactly what the relay queues, and the sender receives nothing', async () => {
    const mallory = await rawDevice();
    const bob = await recipient();
    const first = await deliver(mallory, bob, text('first'));
    const threat = await deliver(mallory, bob, text('I know where you live'));
    const later = await deliver(mallory, bob, text('answer me'));
    expect(bob.client.reportable(threat.conversation, threat.messageId)).toMatchObject({ reportable: true });

    const request = {
      conversation: threat.conversation,
      messageId: threat.messageId,
      context: [later.messageId, first.messageId],
      reason: 'threat' as const,
      comment: 'since last week',
    };
    const preview = bob.client.reportPreview(request);
    expect(preview.items.map((i) => [i.role, i.body])).toEqual([
      ['reported', { type: 'text', text: 'I know where you live' }],
      ['context', { type: 'text', text: 'first' }],
      ['context', { type: 'text', text: 'answer me' }],
    ]);
    expect(preview.reportedSender).toEqual({ account: accountId(mallory.account.publicKey), deviceId: 1 });

    const before = (await queued()).length;
    expect(await bob.client.report(request)).toEqual({ queued: true, items: 3 });
    const all = await queued();
    expect(all).toHaveLength(before + 1);
    const filed = all.at(-1);
    expect(filed?.reason).toBe(3);
    expect(filed?.comment).toBe('since last week');
    // The relay holds exactly the previewed messages, in the previewed order.
    const sentBodies = filed?.items.map((i) => decodeContent(i.plaintext).body);
    expect(sentBodies).toEqual(preview.items.map((i) => i.body));
    expect(filed?.items.map((i) => messageIdText(decodeContent(i.plaintext).messageId))).toEqual(preview.items.map((i) => i.messageId));
    // The reported person is told nothing: no envelope reached the sender.
    expect((await mallory.relay.fetchMessages()).messages).toEqual([]);

    // Reporting it again is the relay's REPORT_DUPLICATE, as a typed error.
    const again = await bob.client.report(request).catch((e) => e);
    expect(isReportError(again, 'REPORT_DUPLICATE')).toBe(true);
    await bob.client.close();
  });

  it('reports a file: the relay checks its stored blob against the franked pointer', async () => {
    const mallory = await rawDevice();
    const bob = await recipient();
    const { ciphertext, info } = encryptAttachment(b.randomBytes(5000));
    const created = await mallory.relay.createAttachment(ciphertext.length);
    await mallory.relay.uploadAttachment(created.id, ciphertext);
    const pointer = encodeAttachmentPointer({ ...info, id: created.id, fileName: 'photo.jpg', contentType: 'image/jpeg' });
    const file = await deliver(mallory, bob, {
      expireTimer: 0,
      body: { type: 'attachment', attachment: attachmentInfo(pointer), caption: 'look' },
    });
    const preview = bob.client.reportPreview({ conversation: file.conversation, messageId: file.messageId, reason: 'sexual-content' });
    expect(preview.items[0]?.body).toEqual({
      type: 'attachment',
      caption: 'look',
      fileName: 'photo.jpg',
      contentType: 'image/jpeg',
      size: 5000,
    });
    expect(preview.disclosed.some((d) => d.includes('files'))).toBe(true);
    expect(await bob.client.report({ conversation: file.conversation, messageId: file.messageId, reason: 'sexual-content' })).toEqual({
      queued: true,
      items: 1,
    });
    const filed = (await queued()).at(-1);
    expect(filed?.items[0]?.attachments).toEqual([{ pointerIndex: 0, blob: null }]);

    // The blob is gone from the relay: the report cannot fix the file, and says so.
    const gone = await deliver(mallory, bob, {
      expireTimer: 0,
      body: { type: 'attachment', attachment: attachmentInfo(pointer), caption: '' },
    });
    await mallory.relay.deleteAttachment(created.id);
    const refused = await bob.client
      .report({ conversation: gone.conversation, messageId: gone.messageId, reason: 'other' })
      .catch((e) => e);
    expect(isReportError(refused, 'ATTACHMENT_UNAVAILABLE')).toBe(true);
    await bob.client.close();
  });

  it('a disappeared message takes its franking key with it: reportable says so, and report refuses before sending', async () => {
    const mallory = await rawDevice();
    const bob = await recipient();
    const m = await deliver(mallory, bob, text('this will vanish', 60));
    expect(bob.client.reportable(m.conversation, m.messageId)).toMatchObject({ reportable: true, until: expect.any(Number) });
    clock.now += 61_000;
    const verdict = bob.client.reportable(m.conversation, m.messageId);
    expect(verdict).toEqual({ reportable: false, reason: 'gone', explanation: expect.stringContaining('can no longer be reported') });
    // The row itself is gone from the store, not only hidden by the check.
    expect(bob.store.list('franked', '').filter((e) => e.key.includes(m.messageId))).toEqual([]);
    const refused = await bob.client.report({ conversation: m.conversation, messageId: m.messageId, reason: 'spam' }).catch((e) => e);
    expect(isReportError(refused, 'NOT_REPORTABLE')).toBe(true);
    expect(refused.details).toMatchObject({ reason: 'gone' });
    await bob.client.close();
  });

  it('the terminal dialog says a message listed before it disappeared can no longer be reported', async () => {
    const mallory = await rawDevice();
    const bob = await recipient();
    await deliver(mallory, bob, text('gone in a minute', 60));
    const lines: string[] = [];
    const dialog = new ReportDialog(bob.client, accountId(mallory.account.publicKey), { print: (l) => lines.push(l) });
    dialog.command('');
    expect(lines[0]).toMatch(/^ {3}1 {2}\[.*\] .*: "gone in a minute"$/);
    clock.now += 61_000;
    dialog.command('1 spam');
    expect(lines.at(-1)).toBe('  cannot report: This message can no longer be reported: it disappeared or was deleted.');
    expect(dialog.waiting).toBe(false);
    await bob.client.close();
  });

  it('refuses what the relay would refuse before sending: bad context, own and unfranked messages, expired proofs', async () => {
    const mallory = await rawDevice();
    const eve = await rawDevice();
    const bob = await recipient();
    const a = await deliver(mallory, bob, text('one'));
    const other = await deliver(eve, bob, text('from someone else'));
    const code = async (request: Parameters<ParleyClient['report']>[0]) => {
      const e = await bob.client.report(request).catch((x) => x);
      return isReportError(e) ? [e.code, e.details['reason']] : e;
    };
    // Context from another conversation is unknown here; from the same message, a repeat.
    expect(await code({ conversation: a.conversation, messageId: a.messageId, context: [other.messageId], reason: 'spam' })).toEqual([
      'BAD_CONTEXT',
      'gone',
    ]);
    expect(await code({ conversation: a.conversation, messageId: a.messageId, context: [a.messageId], reason: 'spam' })).toEqual([
      'BAD_CONTEXT',
      'the reported message itself',
    ]);
    const many = Array.from({ length: 11 }, () => a.messageId);
    expect(await code({ conversation: a.conversation, messageId: a.messageId, context: many, reason: 'spam' })).toEqual([
      'BAD_CONTEXT',
      'too-many',
    ]);
    // A message without franked material (a v1 sender): not reportable.
    const plain = {
      messageId: b.randomBytes(16),
      sentAt: 0,
      expireTimer: 0,
      group: null,
      deviceList: null,
      body: { type: 'text' as const, text: 'v1' },
    };
    bob.store.transaction(() =>
      addMessage(bob.store, {
        conversation: a.conversation,
        outgoing: false,
        sender: { accountKey: mallory.account.publicKey, deviceId: 1 },
        content: plain,
        storedAt: clock.now++,
        status: MessageStatus.delivered,
        expiresAt: null,
      }),
    );
    expect(bob.client.reportable(a.conversation, messageIdText(plain.messageId))).toMatchObject({
      reportable: false,
      reason: 'not-franked',
    });
    // Past the frank key's retention nobody can prove it: said before anything is sent.
    const saved = clock.now;
    clock.now = (Math.floor(saved / FRANK_KEY_PERIOD_MS) + 1) * FRANK_KEY_PERIOD_MS + FRANK_KEY_RETENTION_MS;
    expect(bob.client.reportable(a.conversation, a.messageId)).toMatchObject({ reportable: false, reason: 'proof-expired' });
    clock.now = saved;
    await bob.client.close();
  });
});

// Real clients frank only once they send version 2 by default (the client's v2 sends, issue 17/19, engineer v2wire);
// until then this block says so and skips, and the raw-sender tests above cover the same report path.
const V2_BY_DEFAULT = DEFAULT_OPTIONS.sessionVersions.includes(2);
if (!V2_BY_DEFAULT) console.warn('reports.test.ts: end-to-end block skipped: clients do not send version 2 by default yet');

describe.skipIf(!V2_BY_DEFAULT)('end to end: real clients send v2 messages, the recipient reports them', () => {
  /** Every report a counted link filed, as sent. */
  const filedBytes: Uint8Array[] = [];
  /** A started client; `calls` counts what its relay link was asked to do (to show a report sends no envelope). */
  async function person(calls: string[] = []) {
    const base = connectRelayNode(relay.url);
    const counted: typeof base = (self) => {
      const link = base(self);
      return new Proxy(link, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver);
          if (property === 'reports' && value) {
            const reports = value as NonNullable<typeof link.reports>;
            return {
              fileReport: (r: Uint8Array) => {
                calls.push('fileReport');
                filedBytes.push(r);
                return reports.fileReport(r);
              },
            };
          }
          if (property === 'sealed' && value) {
            const sealed = value as NonNullable<typeof link.sealed>;
            return {
              ...sealed,
              sendSealed: (...a: Parameters<typeof sealed.sendSealed>) => {
                calls.push('sendSealed');
                return sealed.sendSealed(...a);
              },
            };
          }
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            calls.push(String(property));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    };
    const store = new MemoryStore();
    const client = await ParleyClient.createAccount({ store, relay: counted, options: TEST_OPTIONS });
    await client.start();
    /** This device's own relay link, outside the SDK: to present report bytes as this device. */
    const link = () =>
      base({ device: (loadIdentity(store, defaultProvider()) as NonNullable<ReturnType<typeof loadIdentity>>).device, account: null });
    return { client, calls, link };
  }
  const received = (c: ParleyClient, conversation: string, textOrName: string) =>
    c.history(conversation).find((m) => {
      const body = m.content.body;
      return (
        !m.outgoing &&
        ((body.type === 'text' && body.text === textOrName) || (body.type === 'attachment' && body.attachment.fileName === textOrName))
      );
    });

  it('a text, a file and a group message each verify at the relay; the report sends nothing but the report', async () => {
    const alice = await person();
    const bobCalls: string[] = [];
    const bob = await person(bobCalls);
    const carol = await person();
    await alice.client.addContact(bob.client.accountId, 'bob');
    await bob.client.addContact(alice.client.accountId, 'alice');
    const dm = alice.client.accountId;

    await alice.client.sendText(bob.client.accountId, 'you are worthless');
    await until(() => received(bob.client, dm, 'you are worthless') !== undefined, 20_000, 'the text');
    const text = received(bob.client, dm, 'you are worthless');
    const textId = messageIdText(text?.content.messageId as Uint8Array);
    expect(bob.client.reportable(dm, textId)).toMatchObject({ reportable: true });

    const photo = b.randomBytes(3000);
    await alice.client.sendFile(bob.client.accountId, {
      stream: new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(photo);
          c.close();
        },
      }),
      size: photo.length,
      fileName: 'photo.png',
      contentType: 'image/png',
    });
    await until(() => received(bob.client, dm, 'photo.png') !== undefined, 20_000, 'the file');
    const fileId = messageIdText(received(bob.client, dm, 'photo.png')?.content.messageId as Uint8Array);

    // A group message is v2 once Alice knows every member device runs v2 (spec/10 §4.3): she has talked to Carol.
    await alice.client.sendText(carol.client.accountId, 'hi');
    await until(() => received(carol.client, dm, 'hi') !== undefined, 20_000, 'the hello to Carol');
    const group = await alice.client.createGroup('class', [bob.client.accountId, carol.client.accountId]);
    await until(() => bob.client.group(group) !== null, 20_000, 'the group');
    await alice.client.sendText(group, 'everyone hates you');
    await until(() => received(bob.client, group, 'everyone hates you') !== undefined, 20_000, 'the group message');
    const groupId = messageIdText(received(bob.client, group, 'everyone hates you')?.content.messageId as Uint8Array);

    const before = (await queued()).length;
    bobCalls.length = 0;
    expect(await bob.client.report({ conversation: dm, messageId: textId, context: [fileId], reason: 'harassment' })).toEqual({
      queued: true,
      items: 2,
    });
    expect(
      await bob.client.report({ conversation: group, messageId: groupId, reason: 'harassment', comment: 'in our class group' }),
    ).toEqual({
      queued: true,
      items: 1,
    });
    // Two reports, and no envelope to anyone (sealed or identified) while filing them.
    expect(bobCalls).toEqual(['fileReport', 'fileReport']);
    const filed = (await queued()).slice(before);
    expect(filed).toHaveLength(2);
    expect(filed[0]?.items[1]?.attachments).toEqual([{ pointerIndex: 0, blob: null }]);
    // The group report names the group (the moderator reads it from the franked content; the relay never saw it at send time).
    const groupRef = parseConversationId(group) as { kind: 'group'; groupId: Uint8Array };
    expect(toHex(decodeContent(filed[1]?.items[0]?.plaintext as Uint8Array).group as Uint8Array)).toBe(toHex(groupRef.groupId));

    // Carol received the same group message; Bob's report bytes presented by her are another recipient's: FRANK_INVALID.
    const groupReport = filedBytes.at(-1) as Uint8Array;
    const asCarol = await carol
      .link()
      .reports?.fileReport(groupReport)
      .catch((e) => e);
    expect(isReportError(asCarol, 'FRANK_INVALID')).toBe(true);
    // Bob's own report with the content altered: TAG_MISMATCH (checked before the duplicate).
    const decoded = decodeReport(groupReport);
    const first = decoded.items[0] as (typeof decoded.items)[number];
    const content = decodeContent(first.plaintext);
    const altered = encodeContent({ ...content, body: { type: 'text', text: 'everyone loves you' } });
    const tampered = encodeReport({ ...decoded, items: [{ ...first, plaintext: altered }] });
    const asBob = await bob
      .link()
      .reports?.fileReport(tampered)
      .catch((e) => e);
    expect(isReportError(asBob, 'TAG_MISMATCH')).toBe(true);
    expect(await queued()).toHaveLength(before + 2);
    for (const p of [alice, bob, carol]) await p.client.close();
  }, 60_000);
});

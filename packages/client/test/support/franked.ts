// Franked messages through a real relay, for the report tests (reports,
// terminal /report, web report screen): a raw sender device sends an
// envelope with a franking tag; the relay franks it; the recipient's row is
// written from the relay's delivery record exactly as engine/apply.ts
// writes a received v2 message (same history key, same expiry). Every frank
// is the relay's own; only the decryption step is skipped.
import { Account, type DeviceIdentity, PreKeyStore, decodeReport, defaultProvider, frankingTag } from '@parley/core';
import { SqliteStorage } from '@parley/relay';
import WebSocket from 'ws';
import { type Content, encodeContent } from '../../src/content/content.ts';
import { putFranked } from '../../src/franking/store.ts';
import { RelayClient, deviceSigner, preKeysOf } from '../../src/relay-client/index.ts';
import { MessageStatus, addMessage, historyKey } from '../../src/state/history.ts';
import { accountId, messageIdText } from '../../src/state/ids.ts';
import { loadIdentity } from '../../src/state/identity.ts';
import type { ClientStore } from '../../src/store/types.ts';

const b = defaultProvider().backend;

export interface RawDevice {
  readonly account: Account;
  readonly device: DeviceIdentity;
  readonly relay: RelayClient;
  readonly id: string;
}

/** A registered device that is no ParleyClient: it sends what the test tells it to. */
export async function rawDevice(relayUrl: string): Promise<RawDevice> {
  const account = Account.generate();
  const device = account.createDevice(1);
  const relay = new RelayClient({ baseUrl: relayUrl, signer: deviceSigner(device), WebSocket: WebSocket as never });
  await relay.registerDevice(device.certificate, preKeysOf(PreKeyStore.generate(device, { oneTimePreKeys: 1, kemPreKeys: 1 })));
  return { account, device, relay, id: accountId(account.publicKey) };
}

/** The recipient side: its store, and a relay client signing as its device (to read its mailbox as the engine would). */
export interface FrankedRecipient {
  readonly store: ClientStore;
  readonly raw: RelayClient;
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

export function recipientOf(store: ClientStore, relayUrl: string): FrankedRecipient {
  const identity = loadIdentity(store, defaultProvider());
  if (!identity) throw new Error('no identity in the store');
  const raw = new RelayClient({ baseUrl: relayUrl, signer: deviceSigner(identity.device), WebSocket: WebSocket as never });
  return { store, raw, accountKey: identity.device.accountKey, deviceId: identity.device.deviceId };
}

let sent = 0;

export type ContentInput = Omit<Content, 'messageId' | 'sentAt' | 'group' | 'deviceList'>;

export const textContent = (text: string, expireTimer = 0): ContentInput => ({ expireTimer, body: { type: 'text', text } });

/** `from` sends `content` franked to `to`; `to`'s store gets the message and its franked row. */
export async function deliverFranked(from: RawDevice, to: FrankedRecipient, content: ContentInput, now: number) {
  const full: Content = { messageId: b.randomBytes(16), sentAt: now, group: null, deviceList: null, ...content };
  const plaintext = encodeContent(full);
  const fk = b.randomBytes(32);
  const sender = { accountKey: from.account.publicKey, deviceId: from.device.deviceId };
  const tag = frankingTag(b, fk, sender, plaintext);
  await from.relay.send([
    { accountKey: to.accountKey, deviceId: to.deviceId, id: `franked-${++sent}`, envelope: b.randomBytes(64), frankingTag: tag },
  ]);
  const { messages } = await to.raw.fetchMessages();
  const m = messages.at(-1);
  if (!m?.delivery) throw new Error('no delivery record');
  await to.raw.ack([m.seq]);
  const conversation = accountId(sender.accountKey);
  const expiresAt = full.expireTimer > 0 ? now + full.expireTimer * 1000 : null;
  const delivery = m.delivery;
  to.store.transaction(() => {
    addMessage(to.store, {
      conversation,
      outgoing: false,
      sender,
      content: full,
      storedAt: now,
      status: MessageStatus.delivered,
      expiresAt,
    });
    putFranked(to.store, {
      messageKey: historyKey(conversation, now, full.messageId),
      conversation,
      group: null,
      messageId: full.messageId,
      sender,
      recipientDevice: to.deviceId,
      delivery,
      frankingKey: fk,
      plaintext,
      attestation: null,
      sealed: false,
      receivedAt: now,
      expiresAt,
    });
  });
  return { conversation, messageId: messageIdText(full.messageId) };
}

/** The reports the relay at `dbPath` holds for the moderators, decoded (its own storage, as the moderator tool reads it). */
export async function queuedReports(dbPath: string): Promise<ReturnType<typeof decodeReport>[]> {
  const storage = new SqliteStorage({ path: dbPath });
  try {
    return (await storage.listReports(0, 100)).map((r) => decodeReport(r.report));
  } finally {
    await storage.close();
  }
}

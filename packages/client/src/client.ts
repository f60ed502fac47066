/**
 * ParleyClient: the SDK's one entry point. spec/10-client.md.
 *
 * An app creates (or opens) a client over a store and a relay, subscribes to
 * events, calls `start()`, and sends with one call per message:
 *
 *   const alice = await ParleyClient.createAccount({ store: new MemoryStore(), relay: connectRelay(url) });
 *   alice.on('message', (m) => console.log(m.conversation, m.body));
 *   await alice.start();
 *   await alice.sendText(bobAccountId, 'hello Bob');
 *
 * Everything that reads and then writes protocol state runs through one
 * serial queue (engine/serial.ts); each step commits in one store
 * transaction (engine/context.ts states the rule).
 */
import {
  Account,
  bytesEqual,
  type CryptoProvider,
  DeviceIdentity,
  Ed25519KeyPair,
  PreKeyStore,
  X25519KeyPair,
  defaultProvider,
  safetyNumber as coreSafetyNumber,
  toHex,
  verifyScannedSafetyNumber,
} from '@parley/core';
import { type FileToSend, downloadFile, uploadFile } from './files/transfer.ts';
import { type AttachmentInfo, type ContentBody, MAX_EXPIRE_TIMER, attachmentInfo } from './content/content.ts';
import { readBytes } from './content/fields.ts';
import { certificateHash, decodeSignedDeviceList, listsCertificate, signDeviceList } from './devices/device-list.ts';
import { decodeLinkRequest, decodeLinkResponse, encodeLinkRequest, encodeLinkResponse } from './devices/linking.ts';
import { newContent, queueDirect, queueReceipt } from './engine/compose.ts';
import { queueContactsSync, requestContacts } from './engine/contacts-sync.ts';
import { type ClientOptions, type Context, DEFAULT_OPTIONS, Pending } from './engine/context.ts';
import { devicesFor, publishOwnList, refreshDevices } from './engine/directory.ts';
import { createGroup as createGroupState, prepareGroupSend, queueGroupContent, requireGroup, updateGroup } from './engine/groups.ts';
import { type FlushResult, flushEntry } from './engine/outbox.ts';
import { type DeadLetter, deleteDeadLetter, getDeadLetter, listDeadLetters } from './engine/dead-letters.ts';
import { receiveEnvelope } from './engine/receive.ts';
import { SerialQueue } from './engine/serial.ts';
import { checkForRestore, maintainPreKeys, registerDevice } from './engine/upkeep.ts';
import { ClientError, isClientError } from './errors.ts';
import { type ClientEvents, Emitter, type EventName, type Listener, type SenderRef } from './events.ts';
import { accountId, messageIdText, parseAccountId } from './state/ids.ts';
import type { AccountRelayLink, IncomingEnvelope, Mailbox, RelayLink } from './relay-link/link.ts';
import { type Contact, contactByName, getContact, getExpireTimer, listContacts, putContact, setExpireTimer } from './state/contacts.ts';
import { type ConversationRef, conversationId, parseConversationId } from './state/conversation-id.ts';
import { emptyDevices, loadDevices, saveDevices } from './state/devices.ts';
import { headOf } from './state/group-state.ts';
import { type GroupRecord, listGroupIds, loadGroup } from './state/groups.ts';
import { MessageStatus, type StoredMessage, addMessage, listMessages, raiseStatus } from './state/history.ts';
import { loadIdentity, loadUpkeep, saveIdentity } from './state/identity.ts';
import { listQueued } from './state/outbox.ts';
import { decodeRecord, encodeRecord } from './state/record.ts';
import { pruneSentLog, reexpireSentLog } from './state/sent-log.ts';
import { type AttachmentFiles, forgetDownload, recordDownload, sweepDownloads } from './store/downloads.ts';
import { durableRelay } from './store/durable-relay.ts';
import type { Clock, ClientStore } from './store/types.ts';

/** Builds the relay link for this device (it signs requests with the device key, and with the account key on the primary). */
export type RelayConnector = (self: { readonly device: DeviceIdentity; readonly account: Account | null }) => RelayLink &
  Partial<AccountRelayLink>;

export interface ClientConfig {
  readonly store: ClientStore;
  readonly relay: RelayConnector;
  readonly provider?: CryptoProvider;
  readonly clock?: Clock;
  readonly options?: Partial<ClientOptions>;
  /**
   * Where `saveAttachment` keeps downloaded files (Node: `DownloadFolder`
   * from `@parley/client/node`). Files of disappearing messages are
   * destroyed by upkeep when the message disappears.
   */
  readonly files?: AttachmentFiles;
}

export interface SendResult {
  /** The message id (base64url), as in events and history. */
  readonly messageId: string;
}

export interface DeviceInfo {
  readonly deviceId: number;
  /** True for this device. */
  readonly current: boolean;
}

/** An envelope parked after failing on this device's store again and again (spec/10-client.md §4.2.2). */
export interface DeadLetterInfo {
  readonly id: string;
  readonly sender: SenderRef;
  readonly clientId: string;
  /** When the relay accepted it (ms since the epoch). */
  readonly serverTimestamp: number;
  /** The local failure's label (SQLITE_FULL, STORE_FAILED, ...). */
  readonly code: string;
  readonly attempts: number;
  readonly parkedAt: number;
}

export interface GroupInfo {
  readonly conversation: string;
  readonly name: string;
  readonly members: readonly string[];
  /** Members that may change the group (spec/08-groups.md §13). */
  readonly admins: readonly string[];
  /** The state's revision: one more at every change. */
  readonly revision: number;
  /** The state hash (hex) that the next change names as its parent. */
  readonly stateHash: string;
}

function groupInfo(conversation: string, g: GroupRecord): GroupInfo {
  const head = headOf(g.states);
  return {
    conversation,
    name: head.state.name,
    members: head.state.members.map(accountId),
    admins: head.state.admins.map(accountId),
    revision: head.state.revision,
    stateHash: toHex(head.hash),
  };
}

const PENDING_LINK = 'pending-link';
const PENDING_LINK_TAG = 'parley/client-pending-link';
/** Longest the retry delay grows to while the relay is unreachable. */
const MAX_RETRY_DELAY_MS = 30_000;

export class ParleyClient {
  readonly #ctx: Context;
  readonly #serial = new SerialQueue();
  readonly #events: Emitter;
  readonly #waiters = new Map<string, ((r: FlushResult) => void)[]>();
  readonly #files: AttachmentFiles | null;
  #mailbox: Mailbox | null = null;
  #maintenance: ReturnType<typeof setInterval> | null = null;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #retryDelay: number;
  #pumping: Promise<void> | null = null;
  #pumpAgain = false;
  #upkeepSoon = false;
  /** The restore check (spec §7.5) ran against the relay since this client opened: sending may encrypt. */
  #restoreChecked = false;
  #closed = false;

  private constructor(ctx: Context, events: Emitter, files: AttachmentFiles | null) {
    this.#ctx = ctx;
    this.#files = files;
    this.#events = events;
    this.#retryDelay = ctx.options.retryDelayMs;
  }

  // ---- setting up -------------------------------------------------------

  /** Creates a new account with this device as its primary (device 1), and registers it with the relay. */
  static async createAccount(config: ClientConfig): Promise<ParleyClient> {
    const provider = config.provider ?? defaultProvider();
    if (loadIdentity(config.store, provider)) throw new TypeError('the store already holds an identity: use ParleyClient.open');
    const options = { ...DEFAULT_OPTIONS, ...config.options };
    const account = Account.generate(provider);
    const device = account.createDevice(1, provider);
    const prekeys = PreKeyStore.generate(device, { oneTimePreKeys: options.oneTimePreKeys, kemPreKeys: options.kemPreKeys }, provider);
    const list = signDeviceList(account, 1, [device.certificate], provider);
    config.store.transaction(() => {
      saveIdentity(config.store, { account, device, prekeys });
      saveDevices(config.store, { ...emptyDevices(account.publicKey), list });
    });
    return ParleyClient.#finishOpen(config, account, device);
  }

  /** Opens the identity in `config.store` (registering it first if an earlier registration did not complete). */
  static async open(config: ClientConfig): Promise<ParleyClient> {
    const provider = config.provider ?? defaultProvider();
    const identity = loadIdentity(config.store, provider);
    if (!identity) throw new ClientError('NOT_REGISTERED', 'the store holds no device identity');
    return ParleyClient.#finishOpen(config, identity.account, identity.device);
  }

  /**
   * Step 1 of linking, on the new device: makes its keys, keeps them in the
   * store, and returns the link request to show to the primary device.
   */
  static requestLink(config: Pick<ClientConfig, 'store' | 'provider'>): string {
    const provider = config.provider ?? defaultProvider();
    if (loadIdentity(config.store, provider)) throw new TypeError('the store already holds an identity');
    const keys = DeviceIdentity.generateKeys(provider);
    config.store.put('identity', PENDING_LINK, encodeRecord(PENDING_LINK_TAG, [keys.signing.seed, keys.identity.privateKey]));
    return encodeLinkRequest({ signingKey: keys.signing.publicKey, identityKey: keys.identity.publicKey });
  }

  /**
   * Step 3 of linking, on the new device: checks the primary's response
   * against the keys from step 1, then registers this device. Show the
   * returned client's `accountId` so the user can compare it with the
   * primary's.
   */
  static async completeLink(config: ClientConfig, response: string): Promise<ParleyClient> {
    const provider = config.provider ?? defaultProvider();
    const options = { ...DEFAULT_OPTIONS, ...config.options };
    const pendingBytes = config.store.get('identity', PENDING_LINK);
    if (!pendingBytes) throw new ClientError('BAD_LINK', 'no link was requested from this store');
    const f = decodeRecord(pendingBytes, PENDING_LINK_TAG, 2);
    const signing = Ed25519KeyPair.fromSeed(readBytes(f[0], 'signing', 32), provider);
    const identity = X25519KeyPair.fromPrivateKey(readBytes(f[1], 'identity', 32), provider);
    const { certificate, deviceList } = decodeLinkResponse(response);
    let device: DeviceIdentity;
    let list: ReturnType<typeof decodeSignedDeviceList>;
    try {
      device = DeviceIdentity.fromParts(certificate, signing, identity, provider);
      list = decodeSignedDeviceList(deviceList, certificate.accountKey, provider);
    } catch {
      throw new ClientError('BAD_LINK', 'the link response is not for this device, or does not verify');
    }
    if (!listsCertificate(list, certificate, provider))
      throw new ClientError('BAD_LINK', "the account's device list does not name this device");
    const prekeys = PreKeyStore.generate(device, { oneTimePreKeys: options.oneTimePreKeys, kemPreKeys: options.kemPreKeys }, provider);
    config.store.transaction(() => {
      saveIdentity(config.store, { account: null, device, prekeys });
      saveDevices(config.store, { ...emptyDevices(certificate.accountKey), list });
      config.store.delete('identity', PENDING_LINK);
    });
    const client = await ParleyClient.#finishOpen(config, null, device);
    // Registered now: our other devices can encrypt to us, so ask them for the contacts (spec §5.6).
    client.#ctx.store.transaction(() => requestContacts(client.#ctx));
    client.#kick();
    return client;
  }

  static async #finishOpen(config: ClientConfig, account: Account | null, device: DeviceIdentity): Promise<ParleyClient> {
    const provider = config.provider ?? defaultProvider();
    const events = new Emitter();
    const ctx: Context = {
      store: config.store,
      provider,
      clock: config.clock ?? Date.now,
      // A write-behind store (IndexedDB) is durable before anything built on its new state goes out.
      relay: durableRelay(config.relay({ device, account }), config.store),
      device,
      account,
      self: { accountKey: device.accountKey, deviceId: device.deviceId },
      events,
      options: { ...DEFAULT_OPTIONS, ...config.options },
    };
    const client = new ParleyClient(ctx, events, config.files ?? null);
    if (!loadUpkeep(config.store).registered)
      await client.#serial.run(async () => {
        await registerDevice(ctx);
        // A new account's first list (revision 1) goes to the relay once the account exists there.
        await publishOwnList(ctx);
      });
    return client;
  }

  // ---- identity ----------------------------------------------------------

  /** This account's id (base64url of the account key): what others add as a contact. */
  get accountId(): string {
    return accountId(this.#ctx.self.accountKey);
  }

  get deviceId(): number {
    return this.#ctx.self.deviceId;
  }

  /** True on the device that holds the account key (it can add and remove devices). */
  get isPrimary(): boolean {
    return this.#ctx.account !== null;
  }

  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    return this.#events.on(event, listener);
  }

  // ---- running -----------------------------------------------------------

  /** Connects the receive loop, runs upkeep once, sends what is queued, and schedules upkeep. */
  async start(): Promise<void> {
    this.#open();
    if (this.#mailbox) return;
    this.#mailbox = this.#ctx.relay.openMailbox({
      onEnvelope: (e) => this.#onEnvelope(e),
      onOpen: () => {
        this.#emit('connection', { state: 'open' });
        this.#retryDelay = this.#ctx.options.retryDelayMs;
        this.#kick();
      },
      onClose: (reason) => this.#emit('connection', { state: 'closed', reason }),
      onEnded: (reason) => {
        // The link will not reconnect: forget it, so start() can connect again (and take the device back).
        this.#mailbox = null;
        if (this.#maintenance) clearInterval(this.#maintenance);
        this.#maintenance = null;
        this.#emit('connection', { state: 'ended', reason });
      },
      onDrained: () => this.#emit('connection', { state: 'drained' }),
    });
    this.#maintenance = setInterval(() => void this.maintain().catch(() => undefined), this.#ctx.options.maintenanceIntervalMs);
    (this.#maintenance as { unref?: () => void }).unref?.();
    await this.maintain().catch((e) => this.#warn(e));
    this.#kick();
  }

  /** Stops the receive loop and timers and waits for running work. The store stays open (it is the app's). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#maintenance) clearInterval(this.#maintenance);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const mailbox = this.#mailbox;
    this.#mailbox = null;
    await mailbox?.close().catch(() => undefined);
    await this.#pumping;
    await this.#serial.idle();
    for (const [key, waiters] of this.#waiters) {
      for (const w of waiters) w({ status: 'unavailable', error: new ClientError('CLOSED', 'the client was closed') });
      this.#waiters.delete(key);
    }
  }

  /**
   * One round of upkeep now: prekey rotation and refill, expired content
   * swept from the store, the retry window trimmed, the outbox retried.
   */
  async maintain(): Promise<void> {
    this.#open();
    await this.#serial.run(async () => {
      // Files first: their records are what finds them, and the sweep below then scrubs those records too.
      if (this.#files) {
        const files = await sweepDownloads(this.#ctx.store, this.#files, this.#ctx.clock());
        if (files.failed)
          this.#emit('warning', { code: 'DOWNLOAD_NOT_REMOVED', message: `${files.failed} expired download(s) could not be removed yet` });
      }
      this.#ctx.store.transaction(() => reexpireSentLog(this.#ctx.store));
      this.#ctx.store.sweep(this.#ctx.clock());
      this.#ctx.store.transaction(() => pruneSentLog(this.#ctx.store));
      await maintainPreKeys(this.#ctx);
      this.#restoreChecked = true;
      // Covers a publication that failed earlier (the relay answers an unchanged list at no cost).
      await publishOwnList(this.#ctx);
    });
    this.#kick();
  }

  /** Resolves when the outbox is empty, or rejects with the error that keeps an entry waiting. */
  async flush(): Promise<void> {
    for (;;) {
      const next = listQueued(this.#ctx.store)[0];
      if (!next) return;
      const result = await this.#flushed(next.key, true);
      if (result.status === 'blocked' || result.status === 'unavailable') throw result.error;
    }
  }

  // ---- contacts and safety numbers -------------------------------------------

  /**
   * Adds (or renames) a contact. The account must have at least one device
   * on the relay. If `name` pointed at another account before, a
   * `safety-number-change` event tells the app to have the user verify again.
   */
  async addContact(id: string, name: string): Promise<void> {
    const accountKey = parseAccountId(id);
    if (typeof name !== 'string' || name.length === 0 || name.length > 64) throw new TypeError('"name" expected 1..64 characters');
    const pending = new Pending();
    await this.#serial.run(async () => {
      const known = await devicesFor(this.#ctx, accountKey, pending, true);
      if (known.trusted.length === 0 && known.refused.length === 0)
        throw new ClientError('UNKNOWN_ACCOUNT', 'no device of this account is registered');
      this.#ctx.store.transaction(() => {
        const previous = contactByName(this.#ctx.store, name);
        if (previous && previous !== id) {
          pending.add('safety-number-change', { name, previous, account: id });
          const old = parseAccountId(previous);
          const oldContact = getContact(this.#ctx.store, old);
          if (oldContact) putContact(this.#ctx.store, { ...oldContact, name: `${name} (old ${previous.slice(0, 6)})` });
        }
        const current = getContact(this.#ctx.store, accountKey);
        putContact(this.#ctx.store, { accountKey, name, verified: current?.verified ?? false });
        const changed = [getContact(this.#ctx.store, accountKey) as Contact];
        if (previous && previous !== id) changed.push(getContact(this.#ctx.store, parseAccountId(previous)) as Contact);
        queueContactsSync(this.#ctx, changed.filter(Boolean));
      });
    });
    pending.flush(this.#events);
    this.#kick();
  }

  /**
   * Sends every contact (names and verification marks) to this account's
   * other devices again, end-to-end encrypted like any message. Adding,
   * renaming and verifying a contact already send that one, and approving a
   * new device sends the whole list; this is for an app that wants to repeat it.
   */
  async syncContacts(): Promise<void> {
    this.#open();
    await this.#serial.run(() => this.#ctx.store.transaction(() => queueContactsSync(this.#ctx, listContacts(this.#ctx.store))));
    this.#kick();
  }

  contacts(): { account: string; name: string; verified: boolean }[] {
    return listContacts(this.#ctx.store).map((c: Contact) => ({ account: accountId(c.accountKey), name: c.name, verified: c.verified }));
  }

  /** The account id a contact name points at, or null. */
  resolveName(name: string): string | null {
    return contactByName(this.#ctx.store, name);
  }

  /** The 60-digit safety number with an account, and the payload for a QR code. Both people see the same digits. */
  safetyNumber(id: string): { digits: string; scannable: Uint8Array } {
    const n = coreSafetyNumber(this.#ctx.self.accountKey, parseAccountId(id), this.#ctx.provider);
    return { digits: n.digits, scannable: n.scannable };
  }

  /** Checks a scanned safety-number payload from the other person; marks the contact verified when it matches. */
  verifySafetyNumber(id: string, scanned?: Uint8Array): boolean {
    const accountKey = parseAccountId(id);
    const ok =
      scanned === undefined
        ? true
        : verifyScannedSafetyNumber(coreSafetyNumber(this.#ctx.self.accountKey, accountKey, this.#ctx.provider), scanned);
    if (ok) {
      const c = getContact(this.#ctx.store, accountKey);
      if (c)
        this.#ctx.store.transaction(() => {
          putContact(this.#ctx.store, { ...c, verified: true });
          // Our other devices learn the mark too (a sync never takes one away).
          queueContactsSync(this.#ctx, [{ ...c, verified: true }]);
        });
      this.#kick();
    }
    return ok;
  }

  // ---- messaging ----------------------------------------------------------

  /** Sends text to a person (an account id) or a group (`g.<id>`). Resolves once the relay holds it. */
  sendText(conversation: string, text: string): Promise<SendResult> {
    if (typeof text !== 'string') throw new TypeError('"text" expected a string');
    return this.#send(conversation, { type: 'text', text }, true);
  }

  /**
   * Sends a file (a video, a photo, anything): encrypts it as a stream into
   * the relay upload, then sends the pointer (relay id, key, digest, sizes)
   * in an end-to-end encrypted message. Resolves once the message is on the relay.
   */
  async sendFile(conversation: string, file: FileToSend & { caption?: string }): Promise<SendResult> {
    this.#open();
    parseConversationId(conversation);
    const pointer = await uploadFile(this.#ctx.relay, file, this.#ctx.provider);
    return this.#send(conversation, { type: 'attachment', attachment: attachmentInfo(pointer), caption: file.caption ?? '' }, true);
  }

  /** Re-sends an attachment that is already on the relay (forwarding) from its pointer. */
  sendAttachment(conversation: string, attachment: AttachmentInfo, caption = ''): Promise<SendResult> {
    return this.#send(conversation, { type: 'attachment', attachment: attachmentInfo(attachment.pointer), caption }, true);
  }

  /**
   * Downloads, verifies and decrypts a received attachment as a stream. The
   * stream errors if the ciphertext is not exactly what the sender described.
   */
  openAttachment(attachment: AttachmentInfo): ReadableStream<Uint8Array> {
    this.#open();
    return downloadFile(this.#ctx.relay, attachment.pointer, this.#ctx.provider);
  }

  /**
   * Downloads a received (or sent) attachment message into the configured
   * `files`, and returns where it is. The file of a disappearing message is
   * recorded before it is written and destroyed by upkeep when the message
   * disappears (spec §7.4); an app that copies it elsewhere takes that on itself.
   */
  async saveAttachment(conversation: string, messageId: string): Promise<string> {
    this.#open();
    const files = this.#files;
    if (!files) throw new TypeError('saveAttachment needs "files" in the client config');
    const store = this.#ctx.store;
    const found = this.history(conversation).find((m) => messageIdText(m.content.messageId) === messageId);
    if (!found || found.content.body.type !== 'attachment')
      throw new ClientError('UNKNOWN_MESSAGE', 'no stored attachment message with this id in the conversation');
    const { attachment } = found.content.body;
    const location = await files.reserve(attachment.fileName ?? `${attachment.id}.bin`);
    const record = found.expiresAt === null ? null : recordDownload(store, location, found.expiresAt);
    const discard = async () => {
      await files.remove(location);
      if (record) store.transaction(() => forgetDownload(store, record));
    };
    try {
      await files.write(location, this.openAttachment(attachment));
    } catch (e) {
      await discard();
      throw e;
    }
    // The timer may have run out during the download: upkeep may already have passed this record by.
    if (found.expiresAt !== null && this.#ctx.clock() >= found.expiresAt) {
      await discard();
      throw new ClientError('UNKNOWN_MESSAGE', 'the message disappeared during the download');
    }
    return location;
  }

  /** Marks messages in a conversation read: read receipts to their senders, and a note to our other devices. */
  async markRead(conversation: string, messageIds?: readonly string[]): Promise<void> {
    const ref = parseConversationId(conversation);
    await this.#serial.run(() =>
      this.#ctx.store.transaction(() => {
        const unread = listMessages(this.#ctx.store, conversation).filter(
          (m) => !m.outgoing && m.status !== 'read' && (!messageIds || messageIds.includes(messageIdText(m.content.messageId))),
        );
        const bySender = new Map<string, { account: Uint8Array; ids: Uint8Array[] }>();
        for (const m of unread) {
          raiseStatus(this.#ctx.store, m.sender.accountKey, m.content.messageId, MessageStatus.read);
          const k = accountId(m.sender.accountKey);
          const entry = bySender.get(k) ?? { account: m.sender.accountKey, ids: [] };
          entry.ids.push(m.content.messageId);
          bySender.set(k, entry);
        }
        for (const { account, ids } of bySender.values()) {
          for (let i = 0; i < ids.length; i += 500) queueReceipt(this.#ctx, account, 'read', ids.slice(i, i + 500));
          if (ref.kind === 'direct') {
            const receipt = newContent(this.#ctx, { type: 'receipt', kind: 'read', messageIds: ids.slice(0, 500) });
            const sync = newContent(this.#ctx, { type: 'sync', destination: account, content: receipt });
            queueDirect(this.#ctx, this.#ctx.self.accountKey, sync, { keepForRetry: false });
          }
        }
      }),
    );
    this.#kick();
  }

  /** Tells the conversation we are (or stopped) typing. Not stored, not retried beyond the outbox. */
  async setTyping(conversation: string, typing: boolean): Promise<void> {
    await this.#send(conversation, { type: 'typing', typing }, false).catch(() => undefined);
  }

  /** Sets the conversation's disappearing-message timer (seconds, 0 = off) here and for everyone in it. */
  async setExpireTimer(conversation: string, seconds: number): Promise<void> {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_EXPIRE_TIMER)
      throw new RangeError(`"seconds" expected 0..${MAX_EXPIRE_TIMER}`);
    parseConversationId(conversation);
    this.#ctx.store.transaction(() => setExpireTimer(this.#ctx.store, conversation, seconds));
    await this.#send(conversation, { type: 'timer' }, false);
  }

  expireTimer(conversation: string): number {
    return getExpireTimer(this.#ctx.store, conversation);
  }

  /** Envelopes parked after failing on this device's store MAX_LOCAL_ATTEMPTS times, oldest first. */
  deadLetters(): DeadLetterInfo[] {
    return listDeadLetters(this.#ctx.store).map(deadLetterInfo);
  }

  /**
   * Runs a dead letter through the receive path again (once the store is
   * healthy). True when it was handled (delivered, or refused as any envelope
   * can be) and the letter is gone; false when the store failed again (the
   * letter stays). Unknown ids are a TypeError.
   */
  async retryDeadLetter(id: string): Promise<boolean> {
    this.#open();
    const letter = getDeadLetter(this.#ctx.store, id);
    if (!letter) throw new TypeError('"id" names no dead letter');
    const envelope: IncomingEnvelope = {
      seq: -1,
      sender: letter.sender,
      clientId: letter.clientId,
      serverTimestamp: letter.serverTimestamp,
      expiresAt: letter.parkedAt,
      envelope: letter.envelope,
    };
    return this.#serial.run(async () => {
      try {
        await receiveEnvelope(this.#ctx, envelope, { park: false });
      } catch (e) {
        this.#warn(e);
        return false;
      }
      deleteDeadLetter(this.#ctx.store, id);
      this.#kick();
      return true;
    });
  }

  /** Deletes a dead letter without processing it. */
  discardDeadLetter(id: string): void {
    deleteDeadLetter(this.#ctx.store, id);
  }

  /** A conversation's stored messages, oldest first (the latest `limit`). Expired ones are never returned. */
  history(conversation: string, limit?: number): StoredMessage[] {
    parseConversationId(conversation);
    return listMessages(this.#ctx.store, conversation, limit);
  }

  async #send(conversation: string, body: ContentBody, record: boolean): Promise<SendResult> {
    this.#open();
    const ref: ConversationRef = parseConversationId(conversation);
    const timer = getExpireTimer(this.#ctx.store, conversation);
    const ttlSeconds = timer > 0 ? timer : null;
    const pending = new Pending();
    const queued = await this.#serial.run(async () => {
      let key: string;
      let messageId: Uint8Array;
      if (ref.kind === 'direct') {
        if (bytesEqual(ref.accountKey, this.#ctx.self.accountKey)) throw new TypeError('"conversation" is this account itself');
        const known = await devicesFor(this.#ctx, ref.accountKey, pending);
        if (known.trusted.length === 0 && known.refused.length === 0) {
          const again = await refreshDevices(this.#ctx, ref.accountKey, pending);
          if (again.trusted.length === 0 && again.refused.length === 0)
            throw new ClientError('UNKNOWN_ACCOUNT', 'no device of this account is registered');
        }
        await devicesFor(this.#ctx, this.#ctx.self.accountKey, pending);
        ({ key, messageId } = this.#ctx.store.transaction(() => {
          const content = newContent(this.#ctx, body, { expireTimer: timer });
          const k = queueDirect(this.#ctx, ref.accountKey, content, {
            syncToOwnDevices: record || body.type === 'timer',
            keepForRetry: body.type !== 'typing',
            conversation: record ? conversation : null,
            ttlSeconds,
          });
          if (record) {
            addMessage(this.#ctx.store, {
              conversation,
              outgoing: true,
              sender: this.#ctx.self,
              content,
              storedAt: this.#ctx.clock(),
              status: MessageStatus.queued,
              expiresAt: timer > 0 ? this.#ctx.clock() + timer * 1000 : null,
            });
          }
          return { key: k, messageId: content.messageId };
        }));
      } else {
        await prepareGroupSend(this.#ctx, ref.groupId, pending);
        ({ key, messageId } = this.#ctx.store.transaction(() => {
          const content = queueGroupContent(this.#ctx, ref.groupId, body, timer, record);
          const last = listQueued(this.#ctx.store).at(-1);
          return { key: last?.key ?? '', messageId: content.messageId };
        }));
      }
      return { waiter: this.#flushed(key, false), messageId };
    });
    pending.flush(this.#events);
    this.#kick();
    const result = await queued.waiter;
    if (result.status === 'sent' || result.status === 'gone') return { messageId: messageIdText(queued.messageId) };
    throw result.error;
  }

  // ---- groups -------------------------------------------------------------

  /** Creates a group with these member accounts (and us); returns its conversation id. */
  async createGroup(name: string, members: readonly string[]): Promise<string> {
    const keys = members.map((m, i) => parseAccountId(m, `members[${i}]`));
    const pending = new Pending();
    const groupId = await this.#serial.run(async () => {
      for (const k of keys) await devicesFor(this.#ctx, k, pending);
      return this.#ctx.store.transaction(() => createGroupState(this.#ctx, name, keys, pending));
    });
    pending.flush(this.#events);
    this.#kick();
    return conversationId({ kind: 'group', groupId });
  }

  /**
   * Adds or removes member accounts, renames the group, or makes members
   * admins (`addAdmins`) or not (`removeAdmins`). Only an admin may change a
   * group: otherwise ClientError NOT_GROUP_ADMIN, and nothing changes.
   */
  async updateGroup(
    conversation: string,
    change: {
      name?: string;
      add?: readonly string[];
      remove?: readonly string[];
      addAdmins?: readonly string[];
      removeAdmins?: readonly string[];
    },
  ): Promise<void> {
    const ref = parseConversationId(conversation);
    if (ref.kind !== 'group') throw new TypeError('"conversation" expected a group');
    const add = (change.add ?? []).map((m) => parseAccountId(m));
    const remove = (change.remove ?? []).map((m) => parseAccountId(m));
    const addAdmins = (change.addAdmins ?? []).map((m) => parseAccountId(m));
    const removeAdmins = (change.removeAdmins ?? []).map((m) => parseAccountId(m));
    if (remove.some((r) => bytesEqual(r, this.#ctx.self.accountKey))) throw new TypeError('use leaveGroup to leave');
    const pending = new Pending();
    await this.#serial.run(async () => {
      for (const k of add) await devicesFor(this.#ctx, k, pending);
      this.#ctx.store.transaction(() =>
        updateGroup(this.#ctx, ref.groupId, { name: change.name, add, remove, addAdmins, removeAdmins }, pending),
      );
    });
    pending.flush(this.#events);
    this.#kick();
  }

  /** Leaves a group (any member may): the others are told, and the group is deleted here. */
  async leaveGroup(conversation: string): Promise<void> {
    const ref = parseConversationId(conversation);
    if (ref.kind !== 'group') throw new TypeError('"conversation" expected a group');
    const pending = new Pending();
    await this.#serial.run(() =>
      this.#ctx.store.transaction(() => updateGroup(this.#ctx, ref.groupId, { remove: [this.#ctx.self.accountKey] }, pending)),
    );
    pending.flush(this.#events);
    this.#kick();
  }

  groups(): GroupInfo[] {
    return listGroupIds(this.#ctx.store).map((groupId) =>
      groupInfo(conversationId({ kind: 'group', groupId }), requireGroup(this.#ctx, groupId)),
    );
  }

  group(conversation: string): GroupInfo | null {
    const ref = parseConversationId(conversation);
    if (ref.kind !== 'group') return null;
    const g = loadGroup(this.#ctx.store, ref.groupId, this.#ctx.provider);
    return g ? groupInfo(conversation, g) : null;
  }

  // ---- devices --------------------------------------------------------------

  /** The devices we trust for an account (ours by default), fetched from the relay and judged. */
  async devices(id: string = this.accountId): Promise<DeviceInfo[]> {
    const accountKey = parseAccountId(id);
    const pending = new Pending();
    const known = await this.#serial.run(() => refreshDevices(this.#ctx, accountKey, pending));
    pending.flush(this.#events);
    const own = bytesEqual(accountKey, this.#ctx.self.accountKey);
    const ids = known.trusted.map((c) => ({ deviceId: c.deviceId, current: false }));
    if (own) ids.push({ deviceId: this.#ctx.self.deviceId, current: true });
    return ids.sort((a, b) => a.deviceId - b.deviceId);
  }

  /**
   * Step 2 of linking, on the primary: certifies the new device's keys under
   * a fresh device id, signs the new device list, tells our other devices
   * and our contacts, and returns the response to show to the new device.
   */
  async approveLink(request: string): Promise<string> {
    const account = this.#requirePrimary();
    const { signingKey, identityKey } = decodeLinkRequest(request);
    const pending = new Pending();
    const response = await this.#serial.run(async () => {
      const known = await refreshDevices(this.#ctx, this.#ctx.self.accountKey, pending);
      const ids = [this.#ctx.self.deviceId, ...known.trusted.map((c) => c.deviceId), ...(known.list ? [...known.list.devices.keys()] : [])];
      const deviceId = Math.max(...ids) + 1;
      const certificate = account.certify(deviceId, signingKey, identityKey);
      const certificates = [this.#ctx.device.certificate, ...known.trusted, certificate];
      // The new device asks for our contacts once it is registered (engine/contacts-sync.ts).
      const list = this.#ctx.store.transaction(() => this.#publishDeviceList(account, certificates, pending));
      // On the relay before the new device registers, so no sender ever sees it listed but not signed for.
      await publishOwnList(this.#ctx);
      return encodeLinkResponse({ certificate, deviceList: list });
    });
    pending.flush(this.#events);
    this.#kick();
    return response;
  }

  /**
   * Removes one of our devices (primary only): the relay revokes it (the
   * request names its certificate, so a replay can never remove a device
   * re-linked under the same id), and a new signed list goes out, to the
   * relay and to our devices and contacts.
   */
  async removeDevice(deviceId: number): Promise<void> {
    const account = this.#requirePrimary();
    if (deviceId === this.#ctx.self.deviceId) throw new TypeError('the primary device cannot remove itself');
    const remove = this.#ctx.relay.removeDevice;
    if (!remove) throw new ClientError('NOT_PRIMARY', 'this relay link cannot sign as the account');
    const pending = new Pending();
    await this.#serial.run(async () => {
      const known = await refreshDevices(this.#ctx, this.#ctx.self.accountKey, pending);
      // The certificate to revoke: the one we trust, else whatever the relay registered under that id (a ghost).
      const trusted = known.trusted.find((c) => c.deviceId === deviceId);
      const listed = trusted ? null : (await this.#ctx.relay.listDevices(this.#ctx.self.accountKey)).find((d) => d.deviceId === deviceId);
      const hash = trusted
        ? certificateHash(trusted, this.#ctx.provider)
        : listed
          ? this.#ctx.provider.backend.sha256(listed.certificate)
          : null;
      if (hash) await remove.call(this.#ctx.relay, deviceId, hash);
      const certificates = [this.#ctx.device.certificate, ...known.trusted.filter((c) => c.deviceId !== deviceId)];
      this.#ctx.store.transaction(() => this.#publishDeviceList(account, certificates, pending));
      await publishOwnList(this.#ctx);
    });
    pending.flush(this.#events);
    this.#kick();
  }

  /** Signs the next revision of our device list, stores it, and queues it to our devices and everyone we know. */
  #publishDeviceList(account: Account, certificates: readonly DeviceIdentity['certificate'][], pending: Pending): Uint8Array {
    const self = this.#ctx.self.accountKey;
    const before = loadDevices(this.#ctx.store, self, this.#ctx.provider);
    const list = signDeviceList(account, (before.list?.revision ?? 0) + 1, certificates, this.#ctx.provider);
    const others = certificates.filter((c) => c.deviceId !== this.#ctx.self.deviceId);
    saveDevices(this.#ctx.store, {
      ...before,
      list,
      trusted: others,
      refused: before.refused.filter((r) => !others.some((c) => c.deviceId === r.deviceId)),
    });
    // One message per account (each its own entry), so a ghost device on one account holds up no other.
    for (const entry of this.#ctx.store.list('devices')) {
      const content = { ...newContent(this.#ctx, { type: 'device-list' }), deviceList: list.encoded };
      queueDirect(this.#ctx, parseAccountId(entry.key), content, { keepForRetry: true });
    }
    pending.add('devices-change', { account: accountId(self), added: [], removed: [] });
    return list.encoded;
  }

  #requirePrimary(): Account {
    if (!this.#ctx.account) throw new ClientError('NOT_PRIMARY', 'only the primary device (holding the account key) can do this');
    return this.#ctx.account;
  }

  // ---- internals ------------------------------------------------------------

  #onEnvelope(e: IncomingEnvelope): Promise<void> {
    if (this.#closed) return Promise.reject(new ClientError('CLOSED', 'the client was closed'));
    return this.#serial
      .run(async () => {
        const outcome = await receiveEnvelope(this.#ctx, e);
        // Acknowledged only once durable: a write-behind store (IndexedDB) may still be writing.
        // (Synchronous stores get no extra await, so their timing stays exactly as it was.)
        if (this.#ctx.store.flushed) await this.#ctx.store.flushed();
        if (outcome.usedPreKeys) this.#scheduleUpkeep();
      })
      .then(
        () => this.#kick(),
        (err) => {
          // Our own failure (the store): the envelope is not acknowledged and comes again.
          this.#warn(err);
          throw err;
        },
      );
  }

  #scheduleUpkeep(): void {
    if (this.#upkeepSoon) return;
    this.#upkeepSoon = true;
    setTimeout(() => {
      this.#upkeepSoon = false;
      if (!this.#closed) void this.maintain().catch((e) => this.#warn(e));
    }, 0);
  }

  /** A promise for the next flush result of an outbox entry; with `kick`, starts the pump. */
  #flushed(key: string, kick: boolean): Promise<FlushResult> {
    const promise = new Promise<FlushResult>((resolve) => {
      const list = this.#waiters.get(key) ?? [];
      list.push(resolve);
      this.#waiters.set(key, list);
    });
    if (kick) this.#kick();
    return promise;
  }

  #kick(): void {
    if (this.#closed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = this.#pump()
      .catch((e) => this.#warn(e))
      .finally(() => {
        this.#pumping = null;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.#kick();
        }
      });
  }

  async #pump(): Promise<void> {
    if (!this.#restoreChecked && listQueued(this.#ctx.store).length > 0) {
      // No session state loaded from this store encrypts before the restore check ran (spec §7.5).
      try {
        await this.#serial.run(() => checkForRestore(this.#ctx));
        this.#restoreChecked = true;
      } catch (e) {
        const unavailable = isClientError(e, 'RELAY_UNAVAILABLE');
        for (const [key, list] of this.#waiters) {
          this.#waiters.delete(key);
          const error = unavailable ? (e as ClientError) : new ClientError('RELAY_UNAVAILABLE', 'the restore check could not run');
          for (const w of list) w({ status: 'unavailable', error });
        }
        if (!unavailable) this.#warn(e);
        this.#retryLater(this.#retryDelay);
        this.#retryDelay = Math.min(this.#retryDelay * 2, MAX_RETRY_DELAY_MS);
        return;
      }
    }
    const skip = new Set<string>();
    for (;;) {
      if (this.#closed) return;
      const next = listQueued(this.#ctx.store).find((q) => !skip.has(q.key));
      if (!next) return;
      const result = await this.#serial.run(() => flushEntry(this.#ctx, next.key));
      const waiters = this.#waiters.get(next.key) ?? [];
      this.#waiters.delete(next.key);
      for (const w of waiters) w(result);
      if (result.status === 'unavailable') {
        // Later entries would meet the same relay: their callers hear now, and the entries wait for the retry.
        for (const [key, list] of this.#waiters) {
          this.#waiters.delete(key);
          for (const w of list) w(result);
        }
        this.#retryLater(this.#retryDelay);
        this.#retryDelay = Math.min(this.#retryDelay * 2, MAX_RETRY_DELAY_MS);
        return;
      }
      if (result.status === 'blocked') {
        skip.add(next.key);
        this.#retryLater(this.#ctx.options.blockedRetryMs);
        continue;
      }
      if (result.status === 'failed') this.#warn(result.error);
      this.#retryDelay = this.#ctx.options.retryDelayMs;
    }
  }

  #retryLater(ms: number): void {
    if (this.#closed || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#kick();
    }, ms);
    (this.#retryTimer as { unref?: () => void }).unref?.();
  }

  #emit<E extends EventName>(event: E, payload: ClientEvents[E]): void {
    this.#events.emit(event, payload);
  }

  #warn(e: unknown): void {
    const code = (e as { code?: unknown }).code;
    this.#emit('warning', { code: typeof code === 'string' ? code : 'INTERNAL', message: e instanceof Error ? e.message : String(e) });
  }

  #open(): void {
    if (this.#closed) throw new ClientError('CLOSED', 'the client was closed');
  }
}

function deadLetterInfo(l: DeadLetter): DeadLetterInfo {
  return {
    id: l.id,
    sender: { account: accountId(l.sender.accountKey), deviceId: l.sender.deviceId },
    clientId: l.clientId,
    serverTimestamp: l.serverTimestamp,
    code: l.code,
    attempts: l.attempts,
    parkedAt: l.parkedAt,
  };
}

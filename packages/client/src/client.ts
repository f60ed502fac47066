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
 * A facade: it checks arguments and hands each operation to an engine
 * command (engine/send.ts, contacts.ts, devices.ts, read-receipts.ts,
 * group-changes.ts, setup.ts), which `Runner.run` (engine/run.ts) runs
 * through the serial queue and one store transaction. It never writes the
 * store itself. The outbox pump is engine/outbox-scheduler.ts.
 */
import { safetyNumber as coreSafetyNumber, verifyScannedSafetyNumber } from '@parley/core';
import { type AttachmentInfo, MAX_EXPIRE_TIMER, attachmentInfo } from './content/content.ts';
import { openAttachment, saveAttachment } from './engine/attachments.ts';
import { addContactCommand, contactList, markVerifiedCommand, syncContactsCommand } from './engine/contacts.ts';
import type { Context } from './engine/context.ts';
import { deleteDeadLetter, listDeadLetters } from './engine/dead-letters.ts';
import { type DeviceInfo, approveLinkCommand, listDevicesJob, removeDeviceCommand } from './engine/devices.ts';
import {
  type GroupInfo,
  createGroupCommand,
  findGroup,
  leaveGroupCommand,
  listGroups,
  updateGroupCommand,
} from './engine/group-changes.ts';
import { type DeadLetterInfo, deadLetterInfo, retryDeadLetterJob } from './engine/inbox.ts';
import { markReadCommand } from './engine/read-receipts.ts';
import { type ReportOutcome, type ReportRequest, fileReport, prepareReport, reportability } from './engine/reports.ts';
import type { ReportPreview, Reportability } from './reports/build.ts';
import type { Command } from './engine/run.ts';
import { ClientRuntime } from './engine/runtime.ts';
import { revokeTokens } from './sealed/grants.ts';
import { type SendResult, setTimerCommand } from './engine/send.ts';
import * as setup from './engine/setup.ts';
import { Emitter, type EventName, type Listener } from './events.ts';
import { type FileToSend, uploadFile } from './files/transfer.ts';
import { contactByName, getExpireTimer } from './state/contacts.ts';
import { parseConversationId } from './state/conversation-id.ts';
import { type StoredMessage, listMessages } from './state/history.ts';
import { accountId, parseAccountId } from './state/ids.ts';
import { loadSession } from './state/sessions.ts';

export type { ClientConfig, RelayConnector } from './engine/setup.ts';
export type { DeadLetterInfo, DeviceInfo, GroupInfo, SendResult };

export class ParleyClient {
  readonly #rt: ClientRuntime;
  readonly #ctx: Context;

  private constructor(rt: ClientRuntime) {
    this.#rt = rt;
    this.#ctx = rt.ctx;
  }

  // ---- setting up -------------------------------------------------------

  /** Creates a new account with this device as its primary (device 1), and registers it with the relay. */
  static async createAccount(config: setup.ClientConfig): Promise<ParleyClient> {
    return ParleyClient.#finishOpen(config, setup.createIdentity(config));
  }

  /** Opens the identity in `config.store` (registering it first if an earlier registration did not complete). */
  static async open(config: setup.ClientConfig): Promise<ParleyClient> {
    return ParleyClient.#finishOpen(config, setup.openIdentity(config));
  }

  /**
   * Step 1 of linking, on the new device: makes its keys, keeps them in the
   * store, and returns the link request to show to the primary device.
   */
  static requestLink(config: Pick<setup.ClientConfig, 'store' | 'provider'>): string {
    return setup.requestLink(config);
  }

  /**
   * Step 3 of linking, on the new device: checks the primary's response
   * against the keys from step 1, then registers this device. Show the
   * returned client's `accountId` so the user can compare it with the
   * primary's.
   */
  static async completeLink(config: setup.ClientConfig, response: string): Promise<ParleyClient> {
    const client = await ParleyClient.#finishOpen(config, setup.acceptLink(config, response));
    await client.#rt.runner.run(setup.requestContactsCommand());
    return client;
  }

  static async #finishOpen(config: setup.ClientConfig, identity: setup.OpenedIdentity): Promise<ParleyClient> {
    const rt = new ClientRuntime(setup.buildContext(config, identity, new Emitter()), config.files ?? null);
    if (setup.needsRegistration(rt.ctx)) await rt.runner.job(setup.registrationJob, () => false);
    return new ParleyClient(rt);
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
    return this.#ctx.events.on(event, listener);
  }

  // ---- running -----------------------------------------------------------

  /** Connects the receive loop, runs upkeep once, sends what is queued, and schedules upkeep. */
  start(): Promise<void> {
    return this.#rt.start();
  }

  /** Stops the receive loop and timers and waits for running work. The store stays open (it is the app's). */
  close(): Promise<void> {
    return this.#rt.close();
  }

  /**
   * One round of upkeep now: prekey rotation and refill, expired content
   * swept from the store, the retry window trimmed, the outbox retried.
   */
  async maintain(): Promise<void> {
    await this.#rt.maintain();
  }

  /**
   * Revokes every delivery token granted to this contact (a block, for
   * sealed sender): the relay refuses its sealed sends at once, and envelopes
   * already queued under those tokens are dropped on receipt. Returns how
   * many tokens were revoked. spec/12-sealed-sender.md §3.
   */
  async revokeDeliveryTokens(id: string): Promise<number> {
    this.#rt.assertOpen();
    const accountKey = parseAccountId(id);
    return this.#rt.runner.job((ctx) => revokeTokens(ctx, accountKey));
  }

  /** Resolves when the outbox is empty, or rejects with the error that keeps an entry waiting. */
  flush(): Promise<void> {
    return this.#rt.flush();
  }

  // ---- contacts and safety numbers -------------------------------------------

  /**
   * Adds (or renames) a contact. The account must have at least one device
   * on the relay. If `name` pointed at another account before, a
   * `safety-number-change` event tells the app to have the user verify again.
   */
  async addContact(id: string, name: string): Promise<void> {
    await this.#rt.runner.run(addContactCommand(id, name));
  }

  /**
   * Sends every contact (names and verification marks) to this account's
   * other devices again, end-to-end encrypted like any message. Adding,
   * renaming and verifying a contact already send that one, and approving a
   * new device sends the whole list; this is for an app that wants to repeat it.
   */
  async syncContacts(): Promise<void> {
    this.#rt.assertOpen();
    await this.#rt.runner.run(syncContactsCommand());
  }

  contacts(): { account: string; name: string; verified: boolean }[] {
    return contactList(this.#ctx.store);
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

  /**
   * Checks a scanned safety-number payload from the other person; marks the
   * contact verified when it matches (here and on our other devices; at once
   * unless other work is queued, then right after it).
   */
  verifySafetyNumber(id: string, scanned?: Uint8Array): boolean {
    const accountKey = parseAccountId(id);
    const ok =
      scanned === undefined ||
      verifyScannedSafetyNumber(coreSafetyNumber(this.#ctx.self.accountKey, accountKey, this.#ctx.provider), scanned);
    if (ok) this.#rt.runner.runSoon(markVerifiedCommand(accountKey), (e) => this.#rt.warn(e));
    return ok;
  }

  // ---- messaging ----------------------------------------------------------

  /** Sends text to a person (an account id) or a group (`g.<id>`). Resolves once the relay holds it. */
  sendText(conversation: string, text: string): Promise<SendResult> {
    if (typeof text !== 'string') throw new TypeError('"text" expected a string');
    return this.#rt.send(conversation, { type: 'text', text }, true);
  }

  /**
   * Sends a file (a video, a photo, anything): encrypts it as a stream into
   * the relay upload, then sends the pointer (relay id, key, digest, sizes)
   * in an end-to-end encrypted message. Resolves once the message is on the relay.
   */
  async sendFile(conversation: string, file: FileToSend & { caption?: string }): Promise<SendResult> {
    this.#rt.assertOpen();
    parseConversationId(conversation);
    const pointer = await uploadFile(this.#ctx.relay, file, this.#ctx.provider);
    return this.#rt.send(conversation, { type: 'attachment', attachment: attachmentInfo(pointer), caption: file.caption ?? '' }, true);
  }

  /** Re-sends an attachment that is already on the relay (forwarding) from its pointer. */
  sendAttachment(conversation: string, attachment: AttachmentInfo, caption = ''): Promise<SendResult> {
    return this.#rt.send(conversation, { type: 'attachment', attachment: attachmentInfo(attachment.pointer), caption }, true);
  }

  /**
   * Downloads, verifies and decrypts a received attachment as a stream. The
   * stream errors if the ciphertext is not exactly what the sender described.
   */
  openAttachment(attachment: AttachmentInfo): ReadableStream<Uint8Array> {
    this.#rt.assertOpen();
    return openAttachment(this.#ctx, attachment);
  }

  /**
   * Downloads a received (or sent) attachment message into the configured
   * `files`, and returns where it is. The file of a disappearing message is
   * recorded before it is written and destroyed by upkeep when the message
   * disappears (spec §7.4); an app that copies it elsewhere takes that on itself.
   */
  async saveAttachment(conversation: string, messageId: string): Promise<string> {
    this.#rt.assertOpen();
    const files = this.#rt.files;
    if (!files) throw new TypeError('saveAttachment needs "files" in the client config');
    const deps = { files, run: <T>(c: Command<T>) => this.#rt.runner.run(c), open: (a: AttachmentInfo) => this.openAttachment(a) };
    return saveAttachment(this.#ctx, deps, conversation, messageId);
  }

  /** Marks messages in a conversation read: read receipts to their senders, and a note to our other devices. */
  async markRead(conversation: string, messageIds?: readonly string[]): Promise<void> {
    await this.#rt.runner.run(markReadCommand(conversation, messageIds));
  }

  /** Tells the conversation we are (or stopped) typing. Not stored, not retried beyond the outbox. */
  async setTyping(conversation: string, typing: boolean): Promise<void> {
    await this.#rt.send(conversation, { type: 'typing', typing }, false).catch(() => undefined);
  }

  /** Sets the conversation's disappearing-message timer (seconds, 0 = off) here and for everyone in it. */
  async setExpireTimer(conversation: string, seconds: number): Promise<void> {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_EXPIRE_TIMER)
      throw new RangeError(`"seconds" expected 0..${MAX_EXPIRE_TIMER}`);
    await this.#rt.runner.run(setTimerCommand(conversation, seconds));
    await this.#rt.send(conversation, { type: 'timer' }, false);
  }

  expireTimer(conversation: string): number {
    return getExpireTimer(this.#ctx.store, conversation);
  }

  /**
   * The message version of the current session with one device of `account`
   * (1 or 2), or null without one. Version 1 messages are not franked and
   * cannot be reported; the UI can say so (spec/design/formats-v2.md §3.3).
   */
  sessionVersion(account: string, deviceId: number): 1 | 2 | null {
    const accountKey = parseAccountId(account, 'account');
    return loadSession(this.#ctx.store, { accountKey, deviceId }, this.#ctx.provider).record.sessionVersion;
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
    this.#rt.assertOpen();
    const outcome = await this.#rt.runner.job(retryDeadLetterJob(id), (r) => r.handled);
    if (!outcome.handled) this.#rt.warn(outcome.error);
    return outcome.handled;
  }

  /** Deletes a dead letter without processing it. */
  discardDeadLetter(id: string): void {
    this.#rt.runner.runSoon({ commit: (ctx) => deleteDeadLetter(ctx.store, id) }, (e) => this.#rt.warn(e));
  }

  /** A conversation's stored messages, oldest first (the latest `limit`). Expired ones are never returned. */
  history(conversation: string, limit?: number): StoredMessage[] {
    parseConversationId(conversation);
    return listMessages(this.#ctx.store, conversation, limit);
  }

  // ---- reports (spec/14-franking.md §6, spec/10-client.md §7.6) ------------

  /**
   * Whether a received message can be reported, and until when; or why not
   * (`gone`: it disappeared and took its franking key with it, or was
   * deleted; `outgoing`, `not-franked`, `sealed`, `proof-expired`), with
   * the sentence a UI shows.
   */
  reportable(conversation: string, messageId: string): Reportability {
    return reportability(this.#ctx, conversation, messageId);
  }

  /**
   * Exactly what `report` with the same request sends: each message (the
   * reported one first, then the picked context in conversation order) with
   * its sender, delivery time and content, the reason and the comment.
   * Nothing is sent. Throws ReportError NOT_REPORTABLE / BAD_CONTEXT.
   */
  reportPreview(request: ReportRequest): ReportPreview {
    return prepareReport(this.#ctx, request).preview;
  }

  /**
   * Reports a received message (with up to 10 context messages of the same
   * sender in the conversation) to the relay's moderators, from the franked
   * material stored with each message. The reported person receives nothing.
   * Relay refusals are ReportError with the relay's code (REPORT_DUPLICATE,
   * FRANK_KEY_EXPIRED, ...).
   */
  async report(request: ReportRequest): Promise<ReportOutcome> {
    this.#rt.assertOpen();
    return fileReport(this.#ctx, request);
  }

  // ---- groups -------------------------------------------------------------

  /** Creates a group with these member accounts (and us); returns its conversation id. */
  async createGroup(name: string, members: readonly string[]): Promise<string> {
    return this.#rt.runner.run(createGroupCommand(name, members));
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
    await this.#rt.runner.run(updateGroupCommand(this.#ctx, conversation, change));
  }

  /** Leaves a group (any member may): the others are told, and the group is deleted here. */
  async leaveGroup(conversation: string): Promise<void> {
    await this.#rt.runner.run(leaveGroupCommand(conversation));
  }

  groups(): GroupInfo[] {
    return listGroups(this.#ctx);
  }

  group(conversation: string): GroupInfo | null {
    return findGroup(this.#ctx, conversation);
  }

  // ---- devices --------------------------------------------------------------

  /** The devices we trust for an account (ours by default), fetched from the relay and judged. */
  async devices(id: string = this.accountId): Promise<DeviceInfo[]> {
    return this.#rt.runner.job(listDevicesJob(parseAccountId(id)), () => false);
  }

  /**
   * Step 2 of linking, on the primary: certifies the new device's keys under
   * a fresh device id, signs the new device list, tells our other devices
   * and our contacts, and returns the response to show to the new device.
   */
  async approveLink(request: string): Promise<string> {
    return this.#rt.runner.run(approveLinkCommand(this.#ctx, request));
  }

  /**
   * Removes one of our devices (primary only): the relay revokes it (the
   * request names its certificate, so a replay can never remove a device
   * re-linked under the same id), and a new signed list goes out, to the
   * relay and to our devices and contacts.
   */
  async removeDevice(deviceId: number): Promise<void> {
    await this.#rt.runner.run(removeDeviceCommand(this.#ctx, deviceId));
  }
}

/**
 * A malicious peer: a real, registered client whose owner bypasses the SDK's
 * encoders and checks to put any bytes into real sessions and real group
 * chains. The relay sees an ordinary authenticated device; the victim sees
 * envelopes that decrypt (or fail) exactly as a hostile account's would.
 *
 * What it can do, and what each tells a test about:
 *   - `sendPlaintext`: any bytes as the plaintext of a one-to-one message on
 *     the real session (started from the victim's bundle when there is none).
 *   - `sendContent`: any CBOR value as a Content, skipping `encodeContent`'s
 *     checks (out-of-range epochs, revisions, oversized lists, wrong types).
 *   - `sendGroupPlaintext`: any bytes under the attacker's real sender-key
 *     chain of a group the victim holds.
 *   - `firstContact`: a PreKeyMessage from a fresh handshake that is never
 *     stored, so the same bytes (or many fresh ones) can be sent again and again.
 *   - `sendEnvelope`: any bytes as an envelope (what the relay forwards).
 *
 * Usable with the fake relay or the real one: it only needs a RelayConnector.
 * Test support only; nothing in src/ imports it.
 */
import {
  type CborValue,
  type DeviceIdentity,
  SessionRecord,
  decodeAnyBundle,
  defaultProvider,
  encodeCbor,
  verifyBundle,
} from '@parley/core';
import { type RelayConnector, ParleyClient } from '../../src/client.ts';
import { CONTENT_VERSION, ContentType } from '../../src/content/content.ts';
import { timestampToBytes } from '../../src/content/fields.ts';
import { type DeviceAddress, parseAccountId, toBase64Url } from '../../src/state/ids.ts';
import type { RelayLink } from '../../src/relay-link/link.ts';
import { parseConversationId } from '../../src/state/conversation-id.ts';
import { loadDevices } from '../../src/state/devices.ts';
import { loadGroup, saveGroup } from '../../src/state/groups.ts';
import { loadIdentity } from '../../src/state/identity.ts';
import { loadSession, saveSession } from '../../src/state/sessions.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { ClientStore } from '../../src/store/types.ts';

const provider = defaultProvider();
/** Small prekey pools keep setup fast (as harness.ts's TEST_OPTIONS; not imported: this file also runs outside vitest). */
const PEER_OPTIONS = { oneTimePreKeys: 5, kemPreKeys: 2, retryDelayMs: 20, blockedRetryMs: 100, deliveryReceipts: false };

/** Fields of a raw Content; anything not given takes an honest default. Values are not checked. */
export interface RawContent {
  readonly version?: CborValue;
  readonly type: CborValue;
  readonly messageId?: CborValue;
  readonly sentAt?: CborValue;
  readonly expireTimer?: CborValue;
  readonly group?: CborValue;
  readonly body: CborValue;
  readonly deviceList?: CborValue;
}

/** The CBOR array of a Content with any field set to anything. */
export function rawContent(c: RawContent): CborValue[] {
  return [
    c.version ?? CONTENT_VERSION,
    c.type,
    c.messageId ?? provider.random(16),
    c.sentAt ?? timestampToBytes(Date.now()),
    c.expireTimer ?? 0,
    c.group ?? null,
    c.body,
    c.deviceList ?? null,
  ];
}

/** A group state body as groups send it: [revision, name, members, epoch]; values unchecked. */
/**
 * A group state body as groups send it (spec 10 §3.2): [revision, name, members, epoch, admins,
 * parent, author]; values unchecked. Admins default to the members, the parent to 32 zero bytes,
 * the author to the first member.
 */
export function rawGroupState(s: {
  revision: CborValue;
  name?: CborValue;
  members: CborValue;
  epoch: CborValue;
  admins?: CborValue;
  parent?: CborValue;
  author?: CborValue;
}): CborValue[] {
  const first = Array.isArray(s.members) && s.members[0] instanceof Uint8Array ? s.members[0] : new Uint8Array(32);
  return [s.revision, s.name ?? 'g', s.members, s.epoch, s.admins ?? s.members, s.parent ?? new Uint8Array(32), s.author ?? first];
}

export { ContentType };

export class MaliciousPeer {
  /** The honest half: a normal client, used to register, make contact and join groups. */
  readonly client: ParleyClient;
  readonly store: ClientStore;
  readonly #link: RelayLink;
  readonly #device: DeviceIdentity;
  /**
   * The franking tag of each v2 envelope this peer encrypted, by the envelope's bytes object: sent
   * beside it as an honest v2 sender does (a copy or an altered envelope goes without one).
   */
  readonly #tags = new WeakMap<Uint8Array, Uint8Array>();

  private constructor(client: ParleyClient, store: ClientStore, link: RelayLink, device: DeviceIdentity) {
    this.client = client;
    this.store = store;
    this.#link = link;
    this.#device = device;
  }

  /** Registers a new account (one device) on the relay behind `connector` and starts its receive loop. */
  static async create(connector: RelayConnector): Promise<MaliciousPeer> {
    const store = new MemoryStore();
    const client = await ParleyClient.createAccount({ store, relay: connector, options: PEER_OPTIONS });
    await client.start();
    const identity = loadIdentity(store, provider);
    if (!identity) throw new Error('malicious peer: no identity after createAccount');
    const link = connector({ device: identity.device, account: identity.account });
    return new MaliciousPeer(client, store, link, identity.device);
  }

  get accountId(): string {
    return this.client.accountId;
  }

  get address(): DeviceAddress {
    return { accountKey: this.#device.accountKey, deviceId: this.#device.deviceId };
  }

  /** A fresh client id, shaped like the SDK's own (so a victim cannot tell them apart). */
  nextClientId(): string {
    return toBase64Url(provider.random(16));
  }

  /** Encrypts `plaintext` on the real session with each device of `victim` (an account id) and sends it. Returns the client id. */
  async sendPlaintext(victim: string, plaintext: Uint8Array): Promise<string> {
    const accountKey = parseAccountId(victim);
    const devices = await this.#link.listDevices(accountKey);
    const clientId = this.nextClientId();
    const envelopes = [];
    for (const d of devices) {
      const envelope = await this.encryptFor(victim, plaintext, d.deviceId);
      envelopes.push({ recipient: { accountKey, deviceId: d.deviceId }, clientId, envelope });
    }
    await this.#sendAll(envelopes);
    return clientId;
  }

  /** Encrypts `plaintext` on the real session with one device of `victim` and returns the envelope without sending it. */
  async encryptFor(victim: string, plaintext: Uint8Array, deviceId = 1): Promise<Uint8Array> {
    const peer = { accountKey: parseAccountId(victim), deviceId };
    const held = this.store.transaction(() => loadSession(this.store, peer, provider).record);
    const record = held.hasSession ? held : await this.#initiate(peer);
    return this.store.transaction(() => {
      const current = loadSession(this.store, peer, provider).record;
      const use = current.hasSession ? current : record;
      const { message, frankingTag } = use.encryptWithTag(plaintext);
      saveSession(this.store, peer, use);
      if (frankingTag) this.#tags.set(message, frankingTag);
      return message;
    });
  }

  /** This account's signed device list (what an honest client attaches to a first contact). */
  get signedList(): Uint8Array {
    const list = loadDevices(this.store, this.#device.accountKey, provider).list;
    if (!list) throw new Error('malicious peer: no signed device list');
    return list.encoded;
  }

  /**
   * Sends any CBOR value as the Content of a one-to-one message. A Content
   * array whose device-list field is null gets the attacker's signed list
   * there, as an honest first contact carries it (a victim trusts no device
   * of an account whose list it has not seen); `attachList: false` sends it as is.
   */
  sendContent(victim: string, content: CborValue, options: { attachList?: boolean } = {}): Promise<string> {
    const attach = options.attachList !== false && Array.isArray(content) && content.length === 8 && content[7] === null;
    return this.sendPlaintext(victim, encodeCbor(attach ? [...(content as CborValue[]).slice(0, 7), this.signedList] : content));
  }

  /** Makes the victim hold the attacker's signed list (a device-list content), so later raw plaintexts are judged as a known peer's. */
  introduce(victim: string): Promise<string> {
    return this.sendContent(victim, rawContent({ type: ContentType.deviceList, body: [], deviceList: this.signedList }));
  }

  /**
   * Encrypts `plaintext` under the attacker's sender-key chain of `conversation`
   * (a group the attacker created or joined, whose chain the victim holds) and
   * sends the group message to every device of `victims`.
   */
  async sendGroupPlaintext(conversation: string, victims: readonly string[], plaintext: Uint8Array): Promise<string> {
    const ref = parseConversationId(conversation);
    if (ref.kind !== 'group') throw new TypeError('malicious peer: not a group conversation');
    const message = this.store.transaction(() => {
      const group = loadGroup(this.store, ref.groupId, provider);
      if (!group) throw new Error('malicious peer: the attacker does not hold this group');
      const sealed = group.session.encrypt(plaintext);
      saveGroup(this.store, { ...group, generation: group.session.sendingPosition.generation });
      return sealed.message;
    });
    const clientId = this.nextClientId();
    const envelopes = [];
    for (const victim of victims) {
      const accountKey = parseAccountId(victim);
      for (const d of await this.#link.listDevices(accountKey))
        envelopes.push({ recipient: { accountKey, deviceId: d.deviceId }, clientId, envelope: message });
    }
    await this.#sendAll(envelopes);
    return clientId;
  }

  /** Sends any CBOR value as the Content of a group message. */
  sendGroupContent(conversation: string, victims: readonly string[], content: CborValue): Promise<string> {
    return this.sendGroupPlaintext(conversation, victims, encodeCbor(content));
  }

  /**
   * A PreKeyMessage carrying `plaintext`, from a fresh handshake with one
   * device of `victim` that the attacker does not keep: replaying it makes
   * the victim run the handshake again each time it is not stored.
   */
  async firstContact(victim: string, plaintext: Uint8Array, deviceId = 1): Promise<{ recipient: DeviceAddress; envelope: Uint8Array }> {
    const recipient = { accountKey: parseAccountId(victim), deviceId };
    const record = await this.#initiate(recipient);
    const { message, frankingTag } = record.encryptWithTag(plaintext);
    if (frankingTag) this.#tags.set(message, frankingTag);
    return { recipient, envelope: message };
  }

  /**
   * Sends `envelope` as is to one device (a new client id unless one is given), with the franking tag
   * this peer made it with, or `frankingTag` (the original's tag for an altered copy).
   */
  async sendEnvelope(
    recipient: DeviceAddress,
    envelope: Uint8Array,
    clientId = this.nextClientId(),
    frankingTag = this.#tags.get(envelope),
  ): Promise<string> {
    await this.#sendAll([{ recipient, clientId, envelope, ...(frankingTag ? { frankingTag } : {}) }]);
    return clientId;
  }

  /** The franking tag this peer sent (or would send) beside a v2 envelope it encrypted. */
  tagOf(envelope: Uint8Array): Uint8Array | undefined {
    return this.#tags.get(envelope);
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  async #initiate(peer: DeviceAddress): Promise<SessionRecord> {
    const [entry] = await this.#link.fetchBundles(peer.accountKey, peer.deviceId);
    if (!entry) throw new Error('malicious peer: no bundle for the victim device');
    // v1 or v2, as the victim's bundle offers (an honest client's choice; this peer is hostile in content only).
    const bundle = decodeAnyBundle(entry.bundle);
    verifyBundle(bundle, { expectedAccountKey: peer.accountKey, provider });
    const record = new SessionRecord(provider);
    record.initiate(this.#device, bundle);
    return record;
  }

  async #sendAll(
    envelopes: { recipient: DeviceAddress; clientId: string; envelope: Uint8Array; frankingTag?: Uint8Array }[],
  ): Promise<void> {
    const outcome = await this.#link.send(
      envelopes.map((e) => {
        const frankingTag = e.frankingTag ?? this.#tags.get(e.envelope);
        return frankingTag ? { ...e, frankingTag } : e;
      }),
    );
    if (outcome.status !== 'stored') throw new Error(`malicious peer: the relay answered ${outcome.status}`);
  }
}

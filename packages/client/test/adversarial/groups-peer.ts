/**
 * A hostile group member for the groups-* adversarial tests: a real,
 * registered client whose owner bypasses the SDK's encoder and checks to
 * send any group-update (any revision, parent, member or admin list, epoch)
 * through its real one-to-one sessions. The victims see an ordinary member
 * device; only the bytes inside are crafted.
 *
 * The attacker always sends the strongest update the victim's format
 * accepts: the group-state body of the running code (with `admins` and
 * `parent` when the victim's GroupInfo has them, the four-field body of the
 * older format otherwise), so the same test shows the attack landing on the
 * old code and refused on the new.
 *
 * Test support only; nothing in src/ imports it.
 */
import { type CborValue, SessionRecord, decodeAnyBundle, defaultProvider, encodeCbor, fromHex, verifyBundle } from '@parley/core';
import type { GroupInfo, ParleyClient, RelayConnector } from '../../src/client.ts';
import { CONTENT_VERSION, ContentType } from '../../src/content/content.ts';
import { timestampToBytes } from '../../src/content/fields.ts';
import { type DeviceAddress, parseAccountId } from '../../src/state/ids.ts';
import { parseConversationId } from '../../src/state/conversation-id.ts';
import { loadDevices } from '../../src/state/devices.ts';
import { loadIdentity } from '../../src/state/identity.ts';
import { loadSession, saveSession } from '../../src/state/sessions.ts';
import type { ClientStore } from '../../src/store/types.ts';

const provider = defaultProvider();

export interface CraftedState {
  readonly revision: number;
  readonly name?: string;
  /** Account ids. */
  readonly members: readonly string[];
  /** Account ids (ignored by a victim of the older format, which has no admins). */
  readonly admins?: readonly string[];
  /** Hex state hash (ignored by a victim of the older format). */
  readonly parent?: string;
  /** Account id of the change's author (default: the attacker; ignored by the older format). */
  readonly author?: string;
  readonly epoch?: number;
}

/** What a victim's group looks like through the public API, for building the next crafted state. */
export function headOf(info: GroupInfo): { revision: number; parent: string; members: string[]; admins: string[]; newFormat: boolean } {
  const i = info as Partial<GroupInfo> & { revision?: number };
  return {
    // The older GroupInfo shows no revision; there any higher revision wins, so the attacker picks one.
    revision: i.revision ?? 100,
    parent: i.stateHash ?? '00'.repeat(32),
    members: [...(i.members ?? [])],
    admins: [...(i.admins ?? i.members ?? [])],
    newFormat: i.admins !== undefined,
  };
}

export class GroupAttacker {
  readonly #store: ClientStore;
  readonly #connector: RelayConnector;
  readonly client: ParleyClient;

  constructor(client: ParleyClient, store: ClientStore, connector: RelayConnector) {
    this.client = client;
    this.#store = store;
    this.#connector = connector;
  }

  /** Sends a group-update with `state` for `conversation` to every device of each victim account. */
  async sendGroupUpdate(conversation: string, victims: readonly string[], state: CraftedState, newFormat: boolean): Promise<void> {
    const ref = parseConversationId(conversation);
    if (ref.kind !== 'group') throw new TypeError('not a group');
    const body: CborValue[] = [state.revision, state.name ?? 'g', state.members.map((m) => parseAccountId(m)), state.epoch ?? 0];
    if (newFormat)
      body.push(
        (state.admins ?? state.members).map((m) => parseAccountId(m)),
        fromHex(state.parent ?? '00'.repeat(32)),
        parseAccountId(state.author ?? this.client.accountId),
      );
    // Like an honest first contact, the content carries the attacker's signed device list (spec 10 §5),
    // so a victim with no session yet can trust the attacker's device and read what is inside.
    const identity = loadIdentity(this.#store, provider);
    const ownList = identity ? (loadDevices(this.#store, identity.device.accountKey, provider).list?.encoded ?? null) : null;
    const content = [
      CONTENT_VERSION,
      ContentType.groupUpdate,
      provider.random(16),
      timestampToBytes(Date.now()),
      0,
      ref.groupId,
      body,
      ownList,
    ];
    await this.sendPlaintext(victims, encodeCbor(content as CborValue));
  }

  /** Encrypts `plaintext` on the attacker's real session with every device of each victim, and sends it. */
  async sendPlaintext(victims: readonly string[], plaintext: Uint8Array): Promise<void> {
    const identity = loadIdentity(this.#store, provider);
    if (!identity) throw new Error('attacker: no identity');
    const link = this.#connector({ device: identity.device, account: identity.account });
    const clientId = `atk-${Buffer.from(provider.random(9)).toString('base64url')}`;
    const envelopes: { recipient: DeviceAddress; clientId: string; envelope: Uint8Array; frankingTag?: Uint8Array }[] = [];
    for (const victim of victims) {
      const accountKey = parseAccountId(victim);
      for (const d of await link.listDevices(accountKey)) {
        const peer = { accountKey, deviceId: d.deviceId };
        let record = this.#store.transaction(() => loadSession(this.#store, peer, provider).record);
        if (!record.hasSession) {
          const [entry] = await link.fetchBundles(accountKey, d.deviceId);
          if (!entry) throw new Error('attacker: no bundle');
          const bundle = decodeAnyBundle(entry.bundle);
          verifyBundle(bundle, { expectedAccountKey: accountKey, provider });
          record = new SessionRecord(provider);
          record.initiate(identity.device, bundle);
        }
        const use = record;
        // A v2 session's message goes with its franking tag, as an honest sender's does.
        const { message, frankingTag } = this.#store.transaction(() => {
          const out = use.encryptWithTag(plaintext);
          saveSession(this.#store, peer, use);
          return out;
        });
        envelopes.push({ recipient: peer, clientId, envelope: message, ...(frankingTag ? { frankingTag } : {}) });
      }
    }
    const outcome = await link.send(envelopes);
    if (outcome.status !== 'stored') throw new Error(`attacker: the relay answered ${outcome.status}`);
  }
}

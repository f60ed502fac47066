/**
 * An in-memory relay for the SDK's unit tests: the RelayLink contract
 * (packages/client/src/relay-link/link.ts) with the real relay's rules that the
 * SDK depends on: exact device coverage per account, idempotent client ids,
 * stale certificate hashes, one-time prekeys handed out once, in-order
 * delivery with acknowledgement after the handler. The end-to-end tests run
 * the real relay; this one is for fast, targeted scenarios (and for
 * injecting faults the real one does not have).
 */
import {
  type Account,
  type DeviceIdentity,
  type KemPreKeyPublic,
  type OneTimePreKeyPublic,
  type SignedPreKeyPublic,
  type SignedPreKeyV2Public,
  decodeCertificate,
  decodeSignedDeviceList,
  defaultProvider,
  encodeBundle,
  encodeCertificate,
  toHex,
} from '@parley/core';
import type { RelayConnector } from '../../src/client.ts';
import { ClientError } from '../../src/errors.ts';
import { type DeviceAddress, deviceKey } from '../../src/state/ids.ts';
import type {
  AccountRelayLink,
  DeliveryRecord,
  IncomingEnvelope,
  Mailbox,
  MailboxHandlers,
  OutgoingEnvelope,
  PreKeyCounts,
  PreKeyUpload,
  Registration,
  RelayBundle,
  RelayDevice,
  RelayLink,
  SendOutcome,
} from '../../src/relay-link/link.ts';

const hex = toHex;

/**
 * A delivery record as the real relay makes one for a franked envelope
 * (relay franking/delivery.ts), with a random frank: nothing in the SDK can
 * check a frank (only the relay's key can), so its bytes do not matter here.
 */
function fakeDelivery(frankingTag: Uint8Array): DeliveryRecord {
  const p = defaultProvider();
  const acceptedAt = Date.now();
  return { envelopeId: p.random(16), acceptedAt, frankKeyId: Math.floor(acceptedAt / 86_400_000), frank: p.random(32), frankingTag };
}
const sha = (b: Uint8Array) => defaultProvider().backend.sha256(b);

interface DeviceRow {
  certificate: Uint8Array;
  hash: Uint8Array;
}

interface Keys {
  signed: SignedPreKeyPublic;
  /** The v2 form, as the real relay keeps it: replaced together with `signed`. */
  signedV2: SignedPreKeyV2Public | null;
  lastResort: KemPreKeyPublic;
  oneTime: OneTimePreKeyPublic[];
  kem: KemPreKeyPublic[];
}

export class FakeRelay {
  readonly accounts = new Map<string, Map<number, DeviceRow>>();
  readonly keys = new Map<string, Keys>();
  /** False: behave as a relay without the v2 bundle route (or one hiding it), serving v1 bundles only. */
  servesV2 = true;
  readonly mailboxes = new Map<string, IncomingEnvelope[]>();
  readonly sentIds = new Set<string>();
  readonly attachments = new Map<string, Uint8Array>();
  /** Account (hex) -> the signed device list it published (the real relay keeps the highest revision). */
  readonly deviceLists = new Map<string, { revision: number; encoded: Uint8Array }>();
  readonly #wakers = new Map<string, () => void>();
  #seq = 0;
  #down = false;
  /** Every envelope ever stored (the "database" a test can search for plaintext). */
  readonly stored: Uint8Array[] = [];
  /** Bundle fetches served, for assertions on prekey use. */
  bundleFetches = 0;

  readonly connector: RelayConnector = ({ device, account }) => new FakeLink(this, device, account);

  get down(): boolean {
    return this.#down;
  }

  /** Makes every request fail (RELAY_UNAVAILABLE) and drops connections, or brings the relay back. */
  setDown(down: boolean): void {
    this.#down = down;
    if (!down) for (const wake of this.#wakers.values()) wake();
  }

  /** Puts a device row straight into the "database", as an attacker with database access would. */
  injectDevice(accountKey: Uint8Array, deviceId: number, certificate: Uint8Array): void {
    this.#devicesOf(accountKey).set(deviceId, { certificate, hash: sha(certificate) });
  }

  deleteDeviceRow(accountKey: Uint8Array, deviceId: number): void {
    this.#devicesOf(accountKey).delete(deviceId);
  }

  queued(address: DeviceAddress): IncomingEnvelope[] {
    return this.mailboxes.get(deviceKey(address)) ?? [];
  }

  #devicesOf(accountKey: Uint8Array): Map<number, DeviceRow> {
    let m = this.accounts.get(hex(accountKey));
    if (!m) this.accounts.set(hex(accountKey), (m = new Map()));
    return m;
  }

  check(): void {
    if (this.#down) throw new ClientError('RELAY_UNAVAILABLE', 'fake relay is down');
  }

  register(self: DeviceAddress, r: Registration): PreKeyCounts {
    this.check();
    const certificate = encodeCertificate(r.certificate);
    this.#devicesOf(self.accountKey).set(self.deviceId, { certificate, hash: sha(certificate) });
    const k = deviceKey(self);
    const held = this.keys.get(k);
    this.keys.set(k, {
      signed: r.signedPreKey,
      signedV2: r.signedPreKeyV2 ?? null,
      lastResort: r.lastResortKemPreKey,
      oneTime: [...(held?.oneTime ?? []), ...(r.oneTimePreKeys ?? [])],
      kem: [...(held?.kem ?? []), ...(r.kemPreKeys ?? [])],
    });
    return this.counts(self);
  }

  upload(self: DeviceAddress, u: PreKeyUpload): PreKeyCounts {
    this.check();
    const k = this.keys.get(deviceKey(self));
    if (!k) throw new ClientError('RELAY_REFUSED', 'unknown device');
    if (u.signedPreKey && u.signedPreKey.id >= k.signed.id) {
      k.signed = u.signedPreKey;
      k.signedV2 = u.signedPreKeyV2 ?? null;
    }
    if (u.lastResortKemPreKey && u.lastResortKemPreKey.id >= k.lastResort.id) k.lastResort = u.lastResortKemPreKey;
    k.oneTime.push(...(u.oneTimePreKeys ?? []));
    k.kem.push(...(u.kemPreKeys ?? []));
    return this.counts(self);
  }

  counts(self: DeviceAddress): PreKeyCounts {
    const k = this.keys.get(deviceKey(self));
    if (!k) throw new ClientError('RELAY_REFUSED', 'unknown device');
    return {
      oneTimePreKeys: k.oneTime.length,
      kemPreKeys: k.kem.length,
      signedPreKeyId: k.signed.id,
      signedPreKeyV2: k.signedV2 !== null && k.signedV2.id === k.signed.id,
      lastResortKemPreKeyId: k.lastResort.id,
    };
  }

  list(accountKey: Uint8Array): RelayDevice[] {
    this.check();
    return [...this.#devicesOf(accountKey).entries()]
      .sort(([a], [b]) => a - b)
      .map(([deviceId, row]) => ({ deviceId, certificate: row.certificate }));
  }

  bundles(self: DeviceAddress, accountKey: Uint8Array, deviceId: number | 'all'): RelayBundle[] {
    this.check();
    this.bundleFetches++;
    const out: RelayBundle[] = [];
    for (const [id, row] of this.#devicesOf(accountKey)) {
      if (deviceId !== 'all' && id !== deviceId) continue;
      if (deviceId === 'all' && hex(accountKey) === hex(self.accountKey) && id === self.deviceId) continue;
      const k = this.keys.get(deviceKey({ accountKey, deviceId: id }));
      if (!k) continue;
      const oneTime = k.oneTime.shift() ?? null;
      const kem = k.kem.shift() ?? k.lastResort;
      // As the real relay's v2 route: the v2 bundle of a device that published one (spec/09-relay.md §4.2.1).
      const parts = { certificate: decodeCertificate(row.certificate), oneTimePreKey: oneTime, kemPreKey: kem };
      const v2 = this.servesV2 && k.signedV2?.id === k.signed.id ? k.signedV2 : null;
      out.push({
        deviceId: id,
        bundle: encodeBundle(v2 ? { version: 2, signedPreKey: v2, ...parts } : { version: 1, signedPreKey: k.signed, ...parts }),
      });
    }
    return out;
  }

  remove(accountKey: Uint8Array, deviceId: number, certificateHash: Uint8Array): void {
    this.check();
    // As the real relay: a removal names the certificate it removes.
    const row = this.#devicesOf(accountKey).get(deviceId);
    if (!row || hex(row.hash) !== hex(certificateHash)) return;
    this.#devicesOf(accountKey).delete(deviceId);
    this.mailboxes.delete(deviceKey({ accountKey, deviceId }));
    this.keys.delete(deviceKey({ accountKey, deviceId }));
  }

  send(sender: DeviceAddress, envelopes: readonly OutgoingEnvelope[]): SendOutcome {
    this.check();
    const idOf = (e: OutgoingEnvelope) => `${deviceKey(sender)}>${deviceKey(e.recipient)}>${e.clientId}`;
    const fresh = envelopes.filter((e) => !this.sentIds.has(idOf(e)));
    if (fresh.length === 0) return { status: 'stored' };
    const byAccount = new Map<string, { accountKey: Uint8Array; devices: Set<number> }>();
    for (const e of envelopes) {
      const k = hex(e.recipient.accountKey);
      const entry = byAccount.get(k) ?? { accountKey: e.recipient.accountKey, devices: new Set<number>() };
      entry.devices.add(e.recipient.deviceId);
      byAccount.set(k, entry);
    }
    const mismatches = [];
    for (const [k, { accountKey, devices }] of byAccount) {
      const registered = new Set(
        [...this.#devicesOf(accountKey).keys()].filter((d) => !(k === hex(sender.accountKey) && d === sender.deviceId)),
      );
      const missingDevices = [...registered].filter((d) => !devices.has(d));
      const extraDevices = [...devices].filter((d) => !registered.has(d));
      if (missingDevices.length || extraDevices.length) mismatches.push({ accountKey, missingDevices, extraDevices });
    }
    if (mismatches.length) return { status: 'mismatched-devices', mismatches };
    const stale = new Map<string, { accountKey: Uint8Array; staleDevices: number[] }>();
    for (const e of fresh) {
      const row = this.#devicesOf(e.recipient.accountKey).get(e.recipient.deviceId);
      if (e.certificateHash && row && hex(row.hash) !== hex(e.certificateHash)) {
        const s = stale.get(hex(e.recipient.accountKey)) ?? { accountKey: e.recipient.accountKey, staleDevices: [] };
        s.staleDevices.push(e.recipient.deviceId);
        stale.set(hex(e.recipient.accountKey), s);
      }
    }
    if (stale.size) return { status: 'stale-devices', stale: [...stale.values()] };
    for (const e of fresh) {
      this.sentIds.add(idOf(e));
      const k = deviceKey(e.recipient);
      const box = this.mailboxes.get(k) ?? [];
      box.push({
        seq: ++this.#seq,
        sender,
        clientId: e.clientId,
        serverTimestamp: Date.now(),
        expiresAt: Date.now() + 86_400_000,
        envelope: e.envelope,
        delivery: e.frankingTag ? fakeDelivery(e.frankingTag) : null,
      });
      this.mailboxes.set(k, box);
      this.stored.push(e.envelope);
    }
    for (const e of fresh) this.#wakers.get(deviceKey(e.recipient))?.();
    return { status: 'stored' };
  }

  ack(self: DeviceAddress, seq: number): void {
    const box = this.mailboxes.get(deviceKey(self));
    if (box)
      this.mailboxes.set(
        deviceKey(self),
        box.filter((e) => e.seq !== seq),
      );
  }

  /** Queues a raw envelope to a device as if `sender` had sent it (fault injection), franked when given a tag. */
  deliverRaw(sender: DeviceAddress, recipient: DeviceAddress, clientId: string, envelope: Uint8Array, frankingTag?: Uint8Array): void {
    const k = deviceKey(recipient);
    const box = this.mailboxes.get(k) ?? [];
    box.push({
      seq: ++this.#seq,
      sender,
      clientId,
      serverTimestamp: Date.now(),
      expiresAt: Date.now() + 86_400_000,
      envelope,
      delivery: frankingTag ? fakeDelivery(frankingTag) : null,
    });
    this.mailboxes.set(k, box);
    this.#wakers.get(k)?.();
  }

  openMailbox(self: DeviceAddress, h: MailboxHandlers): Mailbox {
    const k = deviceKey(self);
    let closed = false;
    let running = false;
    let again = false;
    let wasOpen = false;
    const run = async (): Promise<void> => {
      if (closed) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          if (this.#down) {
            if (wasOpen) h.onClose?.('relay down');
            wasOpen = false;
            return;
          }
          if (!wasOpen) {
            wasOpen = true;
            h.onOpen?.();
          }
          for (;;) {
            if (closed || this.#down) break;
            const next = this.mailboxes.get(k)?.[0];
            if (!next) break;
            try {
              await h.onEnvelope(next);
            } catch {
              break;
            }
            this.ack(self, next.seq);
          }
          if (!closed && !this.#down) h.onDrained?.();
        } while (again && !closed);
      } finally {
        running = false;
      }
    };
    this.#wakers.set(k, () => void run());
    setTimeout(() => void run(), 0);
    return {
      close: async () => {
        closed = true;
        if (this.#wakers.get(k)) this.#wakers.delete(k);
      },
    };
  }
}

class FakeLink implements RelayLink, AccountRelayLink {
  readonly self: DeviceAddress;
  readonly #relay: FakeRelay;

  constructor(relay: FakeRelay, device: DeviceIdentity, _account: Account | null) {
    this.#relay = relay;
    this.self = { accountKey: device.accountKey, deviceId: device.deviceId };
  }

  async registerDevice(r: Registration): Promise<PreKeyCounts> {
    return this.#relay.register(this.self, r);
  }
  async uploadPreKeys(u: PreKeyUpload): Promise<PreKeyCounts> {
    return this.#relay.upload(this.self, u);
  }
  async preKeyCounts(): Promise<PreKeyCounts> {
    this.#relay.check();
    return this.#relay.counts(this.self);
  }
  async listDevices(accountKey: Uint8Array): Promise<RelayDevice[]> {
    return this.#relay.list(accountKey);
  }
  async fetchBundles(accountKey: Uint8Array, deviceId: number | 'all'): Promise<RelayBundle[]> {
    return this.#relay.bundles(this.self, accountKey, deviceId);
  }
  async send(envelopes: readonly OutgoingEnvelope[]): Promise<SendOutcome> {
    return this.#relay.send(this.self, envelopes);
  }
  openMailbox(handlers: MailboxHandlers): Mailbox {
    return this.#relay.openMailbox(this.self, handlers);
  }
  async removeDevice(deviceId: number, certificateHash: Uint8Array): Promise<void> {
    this.#relay.remove(this.self.accountKey, deviceId, certificateHash);
  }
  async publishDeviceList(signedList: Uint8Array): Promise<void> {
    this.#relay.check();
    const list = decodeSignedDeviceList(signedList, this.self.accountKey);
    const held = this.#relay.deviceLists.get(hex(this.self.accountKey));
    if (!held || list.revision > held.revision)
      this.#relay.deviceLists.set(hex(this.self.accountKey), { revision: list.revision, encoded: signedList });
  }
  async fetchDeviceList(accountKey: Uint8Array): Promise<Uint8Array | null> {
    this.#relay.check();
    return this.#relay.deviceLists.get(hex(accountKey))?.encoded ?? null;
  }
  async uploadAttachment(ciphertext: AsyncIterable<Uint8Array>, size: number): Promise<string> {
    this.#relay.check();
    const parts: Uint8Array[] = [];
    for await (const p of ciphertext) parts.push(p);
    const all = new Uint8Array(size);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    if (off !== size) throw new ClientError('RELAY_REFUSED', 'size mismatch');
    const id = `att${this.#relay.attachments.size + 1}`;
    this.#relay.attachments.set(id, all);
    return id;
  }
  async *downloadAttachment(id: string): AsyncIterable<Uint8Array> {
    this.#relay.check();
    const blob = this.#relay.attachments.get(id);
    if (!blob) throw new ClientError('RELAY_REFUSED', 'no such attachment');
    for (let i = 0; i < blob.length; i += 100_000) yield blob.slice(i, i + 100_000);
  }
}

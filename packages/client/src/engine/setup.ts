/**
 * Setting a device up: a new account's primary, opening a stored identity,
 * and the new device's side of linking (steps 1 and 3 of
 * spec/10-client.md §5.2). These run before a client exists, so before any
 * serial queue: each stores the new identity in one transaction, and the
 * client built on it registers through the queue (`registrationJob`).
 */
import {
  Account,
  type AsyncCurves,
  type CryptoProvider,
  DeviceIdentity,
  Ed25519KeyPair,
  PreKeyStore,
  X25519KeyPair,
  defaultProvider,
} from '@parley/core';
import { readBytes } from '../content/fields.ts';
import { decodeSignedDeviceList, listsCertificate, signDeviceList } from '../devices/device-list.ts';
import { decodeLinkResponse, encodeLinkRequest } from '../devices/linking.ts';
import { ClientError } from '../errors.ts';
import type { Emitter } from '../events.ts';
import type { AccountRelayLink, RelayLink } from '../relay-link/link.ts';
import { emptyDevices, saveDevices } from '../state/devices.ts';
import { loadIdentity, loadUpkeep, saveIdentity } from '../state/identity.ts';
import { decodeRecord, encodeRecord } from '../state/record.ts';
import type { AttachmentFiles } from '../store/downloads.ts';
import { durableRelay } from '../store/durable-relay.ts';
import type { Clock, ClientStore } from '../store/types.ts';
import { requestContacts } from './contacts-sync.ts';
import { type ClientOptions, type Context, DEFAULT_OPTIONS } from './context.ts';
import { publishOwnList } from './directory.ts';
import type { Command, Job } from './run.ts';
import { registerDevice } from './upkeep.ts';

/** Builds the relay link for this device (it signs requests with the device key, and with the account key on the primary). */
export type RelayConnector = (self: { readonly device: DeviceIdentity; readonly account: Account | null }) => RelayLink &
  Partial<AccountRelayLink>;

export interface ClientConfig {
  readonly store: ClientStore;
  readonly relay: RelayConnector;
  readonly provider?: CryptoProvider;
  /**
   * Asynchronous X25519 and Ed25519 to decrypt with: in a browser,
   * `await webCryptoCurves()` from `@parley/core` (null where the browser
   * lacks them). Received messages then run their curve operations on
   * WebCrypto (several times faster than noble in Chromium); the results are
   * byte-identical to the provider's (spec 01 §4.2.1).
   */
  readonly curves?: AsyncCurves | null;
  readonly clock?: Clock;
  readonly options?: Partial<ClientOptions>;
  /**
   * Where `saveAttachment` keeps downloaded files (Node: `DownloadFolder`
   * from `@parley/client/node`). Files of disappearing messages are
   * destroyed by upkeep when the message disappears.
   */
  readonly files?: AttachmentFiles;
}

/** A device identity ready to open: the account key only on the primary. */
export interface OpenedIdentity {
  readonly account: Account | null;
  readonly device: DeviceIdentity;
}

const PENDING_LINK = 'pending-link';
const PENDING_LINK_TAG = 'parley/client-pending-link';

/** A new account with this device as its primary (device 1): keys, prekeys and the first signed device list, stored. */
export function createIdentity(config: ClientConfig): OpenedIdentity {
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
  return { account, device };
}

/** The identity in the store. */
export function openIdentity(config: ClientConfig): OpenedIdentity {
  const identity = loadIdentity(config.store, config.provider ?? defaultProvider());
  if (!identity) throw new ClientError('NOT_REGISTERED', 'the store holds no device identity');
  return { account: identity.account, device: identity.device };
}

/** Step 1 on the new device: makes its keys, keeps them in the store, and returns the link request. */
export function requestLink(config: Pick<ClientConfig, 'store' | 'provider'>): string {
  const provider = config.provider ?? defaultProvider();
  if (loadIdentity(config.store, provider)) throw new TypeError('the store already holds an identity');
  const keys = DeviceIdentity.generateKeys(provider);
  config.store.put('identity', PENDING_LINK, encodeRecord(PENDING_LINK_TAG, [keys.signing.seed, keys.identity.privateKey]));
  return encodeLinkRequest({ signingKey: keys.signing.publicKey, identityKey: keys.identity.publicKey });
}

/**
 * Step 3 on the new device: checks the primary's response against the keys
 * from step 1 and stores the identity it certifies (in place of the pending
 * keys). Registering is the client's next step.
 */
export function acceptLink(config: ClientConfig, response: string): OpenedIdentity {
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
  return { account: null, device };
}

/** The context every engine module shares, for an opened identity. */
export function buildContext(config: ClientConfig, { account, device }: OpenedIdentity, events: Emitter): Context {
  return {
    store: config.store,
    provider: config.provider ?? defaultProvider(),
    curves: config.curves ?? null,
    clock: config.clock ?? Date.now,
    // A write-behind store (IndexedDB) is durable before anything built on its new state goes out.
    relay: durableRelay(config.relay({ device, account }), config.store),
    device,
    account,
    self: { accountKey: device.accountKey, deviceId: device.deviceId },
    events,
    options: { ...DEFAULT_OPTIONS, ...config.options },
  };
}

/** Whether the device still has to register (an earlier registration did not complete). */
export function needsRegistration(ctx: Context): boolean {
  return !loadUpkeep(ctx.store).registered;
}

/** Registers the device with the relay; a new account's first list (revision 1) goes out once the account exists there. */
export const registrationJob: Job<void> = async (ctx) => {
  await registerDevice(ctx);
  await publishOwnList(ctx);
};

/** A newly linked device asks our other devices for the contacts (spec §5.6): it is registered, so they can encrypt to it. */
export function requestContactsCommand(): Command<void> {
  return { commit: requestContacts };
}

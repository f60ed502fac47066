/**
 * Device directory: register a device (certificate + proof of possession +
 * initial prekeys), list an account's devices with their certificates,
 * remove a device (naming the certificate it removes), and keep the
 * account's latest signed device list. spec/09-relay.md §4.1.
 */
import { MAX_DEVICE_LIST_BYTES, decodeCertificate, decodeSignedDeviceList } from '@parley/core';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { identityOf } from '../auth/authenticate.ts';
import { CloseCode } from '../delivery/hub.ts';
import { fromBase64Url, sameBytes, toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { DEVICE_PURGE_CHUNK_ROWS } from '../storage/rules/devices.ts';
import { purgeRemoved } from '../sweeper.ts';
import { checkPreKeyUpload } from './prekey-upload.ts';
import { AccountParams, DeviceListResponse, DeviceParams, RegisterDeviceBody, RegisterDeviceResponse, errorResponses } from '../schemas.ts';
import { DeviceListBody, PutDeviceListResponse, RemoveQuery, SignedDeviceListResponse } from './device-list-schemas.ts';

/**
 * Retry-After of a registration refused while the id's old mailbox is purged: the purge deletes a
 * full mailbox (50,000 rows) in about 200 writes of DEVICE_PURGE_CHUNK_ROWS, a few seconds of
 * writes between the others'.
 */
const PURGE_RETRY_AFTER_SECONDS = 5;

/** Body limit of the list upload: base64url of the largest list (16 KiB) plus the JSON around it. */
const DEVICE_LIST_BODY_LIMIT = 24 * 1024;

export async function deviceRoutes(instance: FastifyInstance): Promise<void> {
  // Request params, query and body are typed from each route's schema (validated before the handler runs).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { relay } = app;

  app.put(
    '/v1/devices',
    {
      config: { auth: 'registration' },
      schema: {
        summary: 'Register (or re-register) the signing device under its account',
        description: `Authenticated by the device key named in the certificate (proof of possession); the certificate must be signed by the account key in the Authorization header. A different certificate for an existing device id replaces that device (its mailbox and prekeys are dropped, its old certificate revoked). While the device id's old mailbox is still being deleted (a removal or replacement that left more than ${DEVICE_PURGE_CHUNK_ROWS} rows), the answer is 409 DEVICE_PURGING with Retry-After.`,
        tags: ['devices'],
        body: RegisterDeviceBody,
        response: { 200: RegisterDeviceResponse, ...errorResponses(403, 409) },
      },
    },
    async (request, reply) => {
      const identity = identityOf(request);
      const body = request.body;
      const certificateBytes = fromBase64Url(body.certificate, 'certificate');
      const certificate = decodeCertificate(certificateBytes);
      const keys = checkPreKeyUpload(body, certificate.signingKey, relay.provider);
      const result = await relay.storage.registerDevice({
        device: {
          accountKey: certificate.accountKey,
          deviceId: certificate.deviceId,
          certificate: certificateBytes,
          certificateHash: relay.provider.backend.sha256(certificateBytes),
          signingKey: certificate.signingKey,
          registeredAt: relay.now(),
        },
        keys: keys as Parameters<typeof relay.storage.registerDevice>[0]['keys'],
        maxDevicesPerAccount: relay.config.limits.maxDevicesPerAccount,
        preKeyLimits: relay.config.limits,
      });
      switch (result.status) {
        case 'purging':
          // A replacement removed the old device in this request, or an earlier removal did: its
          // mailbox is being purged, and the id waits for it (spec/09-relay.md §4.1.2).
          relay.hub.disconnect(
            { accountKey: certificate.accountKey, deviceId: certificate.deviceId },
            CloseCode.deviceRemoved,
            'device replaced',
          );
          void purgeRemoved(app);
          reply.header('retry-after', String(PURGE_RETRY_AFTER_SECONDS));
          throw relayError('DEVICE_PURGING', "this device id's previous mailbox is still being deleted; register again later", {
            retryAfterSeconds: PURGE_RETRY_AFTER_SECONDS,
          });
        case 'revoked':
          throw relayError('CERTIFICATE_REVOKED', 'this certificate was replaced or removed; certify new device keys');
        case 'too-many-devices':
          throw relayError('TOO_MANY_DEVICES', `an account may have at most ${result.limit} devices`, { limit: result.limit });
        case 'too-many-prekeys':
          throw relayError('TOO_MANY_PREKEYS', `at most ${result.limit} ${result.kind} prekeys per device`, {
            kind: result.kind,
            limit: result.limit,
          });
      }
      if (result.status === 'replaced') {
        relay.hub.disconnect(
          { accountKey: certificate.accountKey, deviceId: certificate.deviceId },
          CloseCode.deviceRemoved,
          'device replaced',
        );
      }
      return {
        status: result.status,
        account: identity.account,
        deviceId: certificate.deviceId,
        preKeys: { ...result.counts, ignored: result.ignored },
      };
    },
  );

  app.get(
    '/v1/accounts/:account/devices',
    {
      config: { auth: 'device-or-account' },
      schema: {
        summary: "List an account's devices with their certificates",
        description: 'Clients verify every certificate against the account key themselves; the relay is not trusted for the list.',
        tags: ['devices'],
        params: AccountParams,
        response: { 200: DeviceListResponse, ...errorResponses(404) },
      },
    },
    async (request) => {
      const { account } = request.params;
      const devices = await relay.storage.listDevices(fromBase64Url(account, 'account', 32));
      if (devices.length === 0) throw relayError('NOT_FOUND', 'no such account');
      return {
        account,
        devices: devices.map((d) => ({
          deviceId: d.deviceId,
          certificate: toBase64Url(d.certificate),
          certificateHash: toBase64Url(d.certificateHash),
          registeredAt: d.registeredAt,
        })),
      };
    },
  );

  app.delete(
    '/v1/accounts/:account/devices/:deviceId',
    {
      config: { auth: 'device-or-account' },
      schema: {
        summary: 'Remove a device (itself, or any device of the account when signed by the account key)',
        description: `Deletes the device, its prekeys and its mailbox (past ${DEVICE_PURGE_CHUNK_ROWS} rows, in bounded writes after the answer), and revokes its certificate so it cannot be registered again. The query names the certificate removed: when the device now has another certificate (it was re-linked), nothing is removed, so a captured removal replayed later is a no-op. A certificate that is already revoked answers 204 again. Unknown devices and devices the signer may not remove get the same 404.`,
        tags: ['devices'],
        params: DeviceParams,
        querystring: RemoveQuery,
        response: { 204: Type.Null(), ...errorResponses(404) },
      },
    },
    async (request, reply) => {
      const identity = identityOf(request);
      const params = request.params;
      const { certificateHash } = request.query;
      const target = { accountKey: fromBase64Url(params.account, 'account', 32), deviceId: Number(params.deviceId) };
      const hash = fromBase64Url(certificateHash, 'certificateHash', 32);
      const allowed =
        sameBytes(identity.accountKey, target.accountKey) && (identity.deviceId === 0 || identity.deviceId === target.deviceId);
      const outcome = allowed ? await relay.storage.removeDevice(target, hash, relay.now()) : 'not-found';
      relay.metrics.deviceDirectory.inc({ op: 'remove', outcome: outcome.replace('-', '_') });
      if (outcome === 'not-found') throw relayError('NOT_FOUND', 'no such device');
      if (outcome === 'removed') {
        relay.hub.disconnect(target, CloseCode.deviceRemoved, 'device removed');
        // What the removal's write left of the mailbox (DEVICE_PURGE_CHUNK_ROWS at most went with it).
        void purgeRemoved(app);
      }
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/v1/accounts/:account/device-list',
    {
      bodyLimit: DEVICE_LIST_BODY_LIMIT,
      config: { auth: 'device-or-account' },
      schema: {
        summary: "Store the account's signed device list (account key only)",
        description:
          'The list must verify under the account key (the same key that signs the request). Only a higher revision replaces the held list; the same list again answers `unchanged`; a lower revision, or the same revision with other devices, is 409 DEVICE_LIST_OUTDATED with the held revision.',
        tags: ['devices'],
        params: AccountParams,
        body: DeviceListBody,
        response: { 200: PutDeviceListResponse, ...errorResponses(403, 409) },
      },
    },
    async (request) => {
      const identity = identityOf(request);
      const { account } = request.params;
      const accountKey = fromBase64Url(account, 'account', 32);
      if (identity.deviceId !== 0 || !sameBytes(identity.accountKey, accountKey))
        throw relayError('FORBIDDEN', 'only the account key may publish its device list');
      const encoded = fromBase64Url(request.body.deviceList, 'deviceList', { max: MAX_DEVICE_LIST_BYTES });
      // Core's decoder checks the shape, that the list names this account, and the account's signature.
      const list = decodeSignedDeviceList(encoded, accountKey, relay.provider);
      const result = await relay.storage.putDeviceList(accountKey, { revision: list.revision, encoded }, relay.now());
      relay.metrics.deviceDirectory.inc({ op: 'device_list', outcome: result.status });
      if (result.status === 'outdated' || result.status === 'conflict') {
        throw relayError('DEVICE_LIST_OUTDATED', 'the relay holds a newer (or another) list for this revision', {
          revision: result.revision,
          reason: result.status,
        });
      }
      return { status: result.status, revision: list.revision };
    },
  );

  app.get(
    '/v1/accounts/:account/device-list',
    {
      config: { auth: 'device-or-account' },
      schema: {
        summary: "The account's latest signed device list",
        description:
          'Clients verify the signature themselves and never accept a lower revision than one they have seen; the relay is not trusted for the list. 404 when the account has published none.',
        tags: ['devices'],
        params: AccountParams,
        response: { 200: SignedDeviceListResponse, ...errorResponses(404) },
      },
    },
    async (request) => {
      const { account } = request.params;
      const held = await relay.storage.getDeviceList(fromBase64Url(account, 'account', 32));
      if (!held) throw relayError('NOT_FOUND', 'no device list for this account');
      return { account, revision: held.revision, deviceList: toBase64Url(held.encoded), updatedAt: held.updatedAt };
    },
  );
}

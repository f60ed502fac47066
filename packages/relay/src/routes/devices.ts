/**
 * Device directory: register a device (certificate + proof of possession +
 * initial prekeys), list an account's devices with their certificates,
 * remove a device. spec/09-relay.md §4.1.
 */
import { decodeCertificate } from '@parley/core';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { identityOf } from '../auth.ts';
import { CloseCode } from '../delivery/hub.ts';
import { fromBase64Url, sameBytes, toBase64Url } from '../encoding.ts';
import { relayError } from '../errors.ts';
import { checkPreKeyUpload } from '../prekey-upload.ts';
import { AccountParams, DeviceListResponse, DeviceParams, RegisterDeviceBody, RegisterDeviceResponse, errorResponses } from '../schemas.ts';

export async function deviceRoutes(app: FastifyInstance): Promise<void> {
  const { relay } = app;

  app.put(
    '/v1/devices',
    {
      config: { auth: 'registration' },
      schema: {
        summary: 'Register (or re-register) the signing device under its account',
        description:
          'Authenticated by the device key named in the certificate (proof of possession); the certificate must be signed by the account key in the Authorization header. A different certificate for an existing device id replaces that device (its mailbox and prekeys are dropped, its old certificate revoked).',
        tags: ['devices'],
        body: RegisterDeviceBody,
        response: { 200: RegisterDeviceResponse, ...errorResponses(403, 409) },
      },
    },
    async (request) => {
      const identity = identityOf(request);
      const body = request.body as RegisterDeviceBody;
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
      const { account } = request.params as { account: string };
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
        description:
          'Deletes the device, its prekeys and its mailbox, and revokes its certificate so it cannot be registered again. Unknown devices and devices the signer may not remove get the same 404.',
        tags: ['devices'],
        params: DeviceParams,
        response: { 204: Type.Null(), ...errorResponses(404) },
      },
    },
    async (request, reply) => {
      const identity = identityOf(request);
      const params = request.params as { account: string; deviceId: string };
      const target = { accountKey: fromBase64Url(params.account, 'account', 32), deviceId: Number(params.deviceId) };
      const allowed =
        sameBytes(identity.accountKey, target.accountKey) && (identity.deviceId === 0 || identity.deviceId === target.deviceId);
      if (!allowed || !(await relay.storage.removeDevice(target, relay.now()))) throw relayError('NOT_FOUND', 'no such device');
      relay.hub.disconnect(target, CloseCode.deviceRemoved, 'device removed');
      return reply.code(204).send();
    },
  );
}

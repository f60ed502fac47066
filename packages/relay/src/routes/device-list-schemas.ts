/**
 * Wire schemas of the signed device list routes and of the removal query.
 * spec/09-relay.md §4.1. Kept next to the device routes; exported as
 * `DeviceListWire` so the client's declared shapes are checked against them.
 */
import { MAX_DEVICE_LIST_BYTES } from '@parley/core';
import { type Static, type TObject, type TString, Type } from '@sinclair/typebox';
import { AccountKey, Bytes, Sha256 } from '../schemas.ts';

const SignedDeviceList = Bytes(MAX_DEVICE_LIST_BYTES, 'SignedDeviceList (spec/10-client.md §5.1), signed by the account key');
export const DeviceListBody = Type.Object({ deviceList: SignedDeviceList }, { additionalProperties: false });
export const SignedDeviceListResponse = Type.Object({
  account: AccountKey,
  revision: Type.Integer({ minimum: 1 }),
  deviceList: SignedDeviceList,
  updatedAt: Type.Integer({ description: 'Milliseconds since the epoch' }),
});
export const PutDeviceListResponse = Type.Object({
  status: Type.Union([Type.Literal('stored'), Type.Literal('unchanged')]),
  revision: Type.Integer({ minimum: 1 }),
});
// Annotated: the spread's TypeBox symbol keys cannot be named in the published .d.ts.
export const RemoveQuery: TObject<{ certificateHash: TString }> = Type.Object(
  { certificateHash: { ...Sha256, description: 'SHA-256 of the certificate being removed: a replay after a re-registration is a no-op' } },
  { additionalProperties: false },
);
export type DeviceListBody = Static<typeof DeviceListBody>;
export type SignedDeviceListResponse = Static<typeof SignedDeviceListResponse>;
export type PutDeviceListResponse = Static<typeof PutDeviceListResponse>;

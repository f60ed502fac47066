// The client declares the relay's wire shapes itself (it must not depend on
// the relay package at runtime). These checks make `npm run typecheck` fail
// when they drift from the relay's schemas; the test body only records that
// the file was compiled.
import type { DeviceListWire, Wire } from '@parley/relay';
import { describe, expect, it } from 'vitest';
import type {
  WireBundleResponse,
  WireDeliveredMessage,
  WireDeviceListResponse,
  WireFanoutBody,
  WireFetchResponse,
  WirePreKeyCounts,
  WirePreKeyUploadResponse,
  WirePutDeviceListResponse,
  WireRegisterDeviceResponse,
  WireSendBody,
  WireSendResponse,
  WireSignedDeviceListResponse,
  WireUploadStatus,
} from '../src/relay-client/types.ts';

/** True when A and B are assignable both ways. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

const checks = {
  sendBody: true satisfies Same<WireSendBody, Wire.SendBody>,
  sendResponse: true satisfies Same<WireSendResponse, Wire.SendResponse>,
  fanoutBody: true satisfies Same<WireFanoutBody, Wire.FanoutBody>,
  delivered: true satisfies Same<WireDeliveredMessage, Wire.DeliveredMessage>,
  fetch: true satisfies Same<WireFetchResponse, Wire.FetchResponse>,
  bundles: true satisfies Same<WireBundleResponse, Wire.BundleResponse>,
  devices: true satisfies Same<WireDeviceListResponse, Wire.DeviceListResponse>,
  counts: true satisfies Same<WirePreKeyCounts, Wire.PreKeyCounts>,
  upload: true satisfies Same<WirePreKeyUploadResponse, Wire.PreKeyUploadResponse>,
  register: true satisfies Same<WireRegisterDeviceResponse, Wire.RegisterDeviceResponse>,
  uploadStatus: true satisfies Same<WireUploadStatus, Wire.UploadStatus>,
  signedDeviceList: true satisfies Same<WireSignedDeviceListResponse, DeviceListWire.SignedDeviceListResponse>,
  putDeviceList: true satisfies Same<WirePutDeviceListResponse, DeviceListWire.PutDeviceListResponse>,
};

describe('client wire types', () => {
  it('match the relay schemas (checked by the type checker)', () => {
    expect(Object.values(checks).every((v) => v === true)).toBe(true);
  });
});

/**
 * The account-signed device list. spec/10-client.md §5.1.
 *
 * The format, its signature and its ordering rules live in core
 * (`keys/device-list.ts`), because the relay checks the same lists it
 * stores and serves; this module keeps the client's import path.
 */
export {
  type DeviceList,
  type ListVerdict,
  DEVICE_LIST_LABEL,
  DEVICE_LIST_VERSION,
  MAX_LISTED_DEVICES,
  certificateHash,
  compareDeviceLists,
  decodeSignedDeviceList,
  listsCertificate,
  listsCertificateHash,
  signDeviceList,
} from '@parley/core';

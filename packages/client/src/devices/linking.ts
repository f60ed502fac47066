/**
 * Linking a new device to an account. spec/10-client.md §5.2.
 *
 *   1. The new device makes its two key pairs and shows a link request:
 *        LinkRequest  = ["parley-link-request", 1, signingKey: bstr .size 32, identityKey: bstr .size 32]
 *   2. The primary (which holds the account key) picks a device id, signs a
 *      certificate for those keys and a new revision of the device list, and
 *      shows a link response:
 *        LinkResponse = ["parley-link-response", 1, certificate (core array form), signedDeviceList: bstr]
 *   3. The new device checks that the certificate is for its own keys and
 *      that the list is signed by the certificate's account and names it,
 *      then registers with the relay.
 *
 * Both travel out of band (a QR code, or text pasted between terminals):
 * neither holds a secret, but the response decides which account the new
 * device joins, so the user compares the account id both screens show.
 */
import { type DeviceCertificate, certificateFromCbor, certificateToCbor, decodeCbor, encodeCbor } from '@parley/core';
import { readArray, readBytes } from '../content/fields.ts';
import { ClientError } from '../errors.ts';
import { fromBase64Url, toBase64Url } from '../state/ids.ts';

const REQUEST_TAG = 'parley-link-request';
const RESPONSE_TAG = 'parley-link-response';
const VERSION = 1;

export interface LinkRequest {
  readonly signingKey: Uint8Array;
  readonly identityKey: Uint8Array;
}

export interface LinkResponse {
  readonly certificate: DeviceCertificate;
  readonly deviceList: Uint8Array;
}

export function encodeLinkRequest(r: LinkRequest): string {
  return toBase64Url(encodeCbor([REQUEST_TAG, VERSION, r.signingKey, r.identityKey]));
}

export function encodeLinkResponse(r: LinkResponse): string {
  return toBase64Url(encodeCbor([RESPONSE_TAG, VERSION, certificateToCbor(r.certificate), r.deviceList]));
}

function open(text: string, tag: string, fields: number): unknown[] {
  const bytes = fromBase64Url(text.trim());
  if (!bytes) throw new ClientError('BAD_LINK', 'not a link code (base64url expected)');
  try {
    const f = readArray(decodeCbor(bytes, tag, 16384), tag, fields);
    if (f[0] !== tag || f[1] !== VERSION) throw new Error('wrong tag or version');
    return f;
  } catch {
    throw new ClientError('BAD_LINK', `not a ${tag}`);
  }
}

export function decodeLinkRequest(text: string): LinkRequest {
  const f = open(text, REQUEST_TAG, 4);
  try {
    return { signingKey: readBytes(f[2], 'signingKey', 32), identityKey: readBytes(f[3], 'identityKey', 32) };
  } catch {
    throw new ClientError('BAD_LINK', 'malformed link request');
  }
}

export function decodeLinkResponse(text: string): LinkResponse {
  const f = open(text, RESPONSE_TAG, 4);
  try {
    return { certificate: certificateFromCbor(f[2]), deviceList: readBytes(f[3], 'deviceList', { min: 1, max: 16384 }) };
  } catch {
    throw new ClientError('BAD_LINK', 'malformed link response');
  }
}

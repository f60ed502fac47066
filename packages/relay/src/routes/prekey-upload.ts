/**
 * Checks an uploaded set of prekeys before it is stored: each decodes
 * (core's strict codecs), signed ones verify against the device's signing
 * key, and KEM keys carry the right last-resort flag. The relay stores the
 * canonical bytes it received and hands them out unchanged in bundles.
 * spec/09-relay.md §4.2.
 */
import {
  type CryptoProvider,
  bytesEqual,
  decodeKemPreKey,
  decodeOneTimePreKey,
  decodeSignedPreKey,
  decodeSignedPreKeyV2,
  verifyKemPreKey,
  verifySignedPreKey,
  verifySignedPreKeyV2,
} from '@parley/core';
import { fromBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import type { PreKeyUploadBody } from '../schemas.ts';
import type { PreKeyUpload, StoredPreKey } from '../storage/types.ts';

export function checkPreKeyUpload(body: PreKeyUploadBody, signingKey: Uint8Array, provider: CryptoProvider): PreKeyUpload {
  const upload: { -readonly [K in keyof PreKeyUpload]: PreKeyUpload[K] } = {};
  if (body.signedPreKey !== undefined) {
    const encoded = fromBase64Url(body.signedPreKey, 'signedPreKey');
    const k = decodeSignedPreKey(encoded);
    verifySignedPreKey(provider, signingKey, k);
    upload.signedPreKey = { id: k.id, encoded };
    if (body.signedPreKeyV2 !== undefined) {
      // The second signature of the same key (spec/09-relay.md §4.2.1): stored
      // and replaced together, so the v1 and v2 bundles always name one key.
      const encodedV2 = fromBase64Url(body.signedPreKeyV2, 'signedPreKeyV2');
      const v2 = decodeSignedPreKeyV2(encodedV2);
      if (v2.id !== k.id || !bytesEqual(v2.publicKey, k.publicKey)) {
        throw relayError('MALFORMED', 'signedPreKeyV2: not the same key as signedPreKey');
      }
      verifySignedPreKeyV2(provider, signingKey, v2);
      upload.signedPreKeyV2 = { id: v2.id, encoded: encodedV2 };
    }
  } else if (body.signedPreKeyV2 !== undefined) {
    throw relayError('MALFORMED', 'signedPreKeyV2: only together with signedPreKey');
  }
  if (body.lastResortKemPreKey !== undefined) {
    const encoded = fromBase64Url(body.lastResortKemPreKey, 'lastResortKemPreKey');
    const k = decodeKemPreKey(encoded);
    if (!k.lastResort) throw relayError('MALFORMED', 'lastResortKemPreKey: the key is not marked last-resort');
    verifyKemPreKey(provider, signingKey, k);
    upload.lastResortKemPreKey = { id: k.id, encoded };
  }
  if (body.oneTimePreKeys !== undefined) {
    upload.oneTimePreKeys = body.oneTimePreKeys.map((text, i): StoredPreKey => {
      const encoded = fromBase64Url(text, `oneTimePreKeys[${i}]`);
      return { id: decodeOneTimePreKey(encoded).id, encoded };
    });
  }
  if (body.kemPreKeys !== undefined) {
    upload.kemPreKeys = body.kemPreKeys.map((text, i): StoredPreKey => {
      const encoded = fromBase64Url(text, `kemPreKeys[${i}]`);
      const k = decodeKemPreKey(encoded);
      if (k.lastResort) throw relayError('MALFORMED', `kemPreKeys[${i}]: a one-time KEM prekey must not be marked last-resort`);
      verifyKemPreKey(provider, signingKey, k);
      return { id: k.id, encoded };
    });
  }
  return upload;
}

/**
 * Builds every vector file in memory: the single source of truth for the
 * JSON in test-vectors/. `generate.ts` writes the result; the test suite
 * rebuilds it with each backend and compares byte for byte.
 */
import type { CryptoBackend } from '@parley/core';
import { cborFile } from './layers/cbor.ts';
import { createCast } from './lib/cast.ts';
import { groupsFile } from './layers/groups.ts';
import { handshakeFile } from './layers/handshake.ts';
import { keysFile } from './layers/keys.ts';
import { paddingFile } from './layers/padding.ts';
import { ratchetFile } from './layers/ratchet.ts';
import { recordsFile } from './layers/records.ts';
import { safetyNumberFile } from './layers/safety-number.ts';
import { versionsFile } from './layers/versions.ts';

/** File name -> exact file text. */
export function buildVectors(backend: CryptoBackend): Map<string, string> {
  const cast = createCast(backend);
  const ratchet = ratchetFile(cast);
  return new Map([
    ['keys.json', keysFile(cast)],
    ['handshake.json', handshakeFile(cast)],
    ['ratchet.json', ratchet.text],
    ['padding.json', paddingFile(cast)],
    ['safety-number.json', safetyNumberFile(cast)],
    ['records.json', recordsFile(cast, ratchet.run)],
    ['groups.json', groupsFile(cast)],
    ['cbor.json', cborFile()],
    ['versions.json', versionsFile(cast)],
  ]);
}

/** safety-number.json against spec/02-keys.md §7. */
import { decode, encode, readArray, readBytes, readVersion } from '../lib/cbor.mjs';
import { same } from '../lib/check.mjs';
import { Label, Limits } from '../lib/constants.mjs';
import { concat, equal, fromHex as h, utf8 } from '../lib/hex.mjs';
import { sha512 } from '../lib/primitives.mjs';

const fingerprints = new Map();

function fingerprint(accountKey) {
  const known = fingerprints.get(accountKey.join());
  if (known) return known;
  let state = concat(utf8(Label.safetyNumber), accountKey);
  for (let i = 0; i < Limits.SAFETY_NUMBER_ITERATIONS; i++) state = sha512(concat(state, accountKey));
  fingerprints.set(accountKey.join(), state);
  return state;
}

function digits(hash) {
  let out = '';
  for (let j = 0; j < 6; j++) {
    const v = hash.subarray(5 * j, 5 * j + 5).reduce((n, b) => n * 256 + b, 0);
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

function safetyNumber(local, remote) {
  const l = fingerprint(local);
  const r = fingerprint(remote);
  const [a, b] = [digits(l), digits(r)].sort();
  return { digits: a + b, local: l.slice(0, 32), remote: r.slice(0, 32), scannable: encode([1, l.slice(0, 32), r.slice(0, 32)]) };
}

/** §7.4: true exactly when the payload decodes and names our two fingerprints in swapped order, and they differ. */
function verifyScan(ours, scanned) {
  try {
    const f = readArray(decode(scanned, 'SafetyNumberPayload', Limits.SAFETY_NUMBER_PAYLOAD_BYTES), 'SafetyNumberPayload', 3);
    readVersion(f[0], 'SafetyNumberPayload');
    const theirLocal = readBytes(f[1], 'local', 32);
    const theirRemote = readBytes(f[2], 'remote', 32);
    return equal(theirLocal, ours.remote) && equal(theirRemote, ours.local) && !equal(theirLocal, theirRemote);
  } catch {
    return false;
  }
}

export function checkSafetyNumber(f) {
  for (const g of f.groups('Fingerprint')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const fp = fingerprint(h(t.accountKey));
        same('fingerprint', fp, t.fingerprint);
        same('digits', digits(fp), t.digits);
      });
    }
  }
  for (const g of f.groups('SafetyNumber')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const sn = safetyNumber(h(t.localAccountKey), h(t.remoteAccountKey));
        same('digits', sn.digits, t.digits);
        same('scannable', sn.scannable, t.scannable);
      });
    }
  }
  for (const g of f.groups('ScannedSafetyNumber')) {
    for (const t of g.tests) {
      f.run(t, () =>
        same('scan verifies', verifyScan(safetyNumber(h(t.localAccountKey), h(t.remoteAccountKey)), h(t.scanned)), t.result === 'valid'),
      );
    }
  }
}

/**
 * safety-number.json: account fingerprints, the 60-digit safety number both
 * people compare, the scannable payload, and scanned payloads that must not
 * verify. Pins spec/02-keys.md §7.
 */
import { type Account, PROTOCOL_VERSION, concatBytes, limits, safetyNumber, utf8, verifyScannedSafetyNumber } from '@parley/core';
import { Label } from '@parley/core';
import type { Cast } from '../lib/cast.ts';
import { setField, truncate } from '../lib/mutate.ts';
import { type TestCase, type VectorFile, finish, hex } from '../lib/vector-file.ts';

export function safetyNumberFile(cast: Cast): string {
  const b = cast.backend;
  const fingerprint = (accountKey: Uint8Array) => {
    let h = concatBytes(utf8(Label.safetyNumber), accountKey);
    for (let i = 0; i < limits.SAFETY_NUMBER_ITERATIONS; i++) h = b.sha512(concatBytes(h, accountKey));
    return h;
  };
  const digits = (h: Uint8Array) => {
    let out = '';
    for (let i = 0; i < 6; i++) {
      let v = 0;
      for (let j = 0; j < 5; j++) v = v * 256 + (h[i * 5 + j] as number);
      out += String(v % 100000).padStart(5, '0');
    }
    return out;
  };
  const people: [string, Account][] = [
    ['alice', cast.alice],
    ['bob', cast.bob],
    ['carol', cast.carol],
  ];
  const fingerprints: TestCase[] = people.map(([name, a]) => {
    const h = fingerprint(a.publicKey);
    return { comment: `${name}'s account key`, accountKey: hex(a.publicKey), fingerprint: hex(h), digits: digits(h), result: 'valid' };
  });
  const pairs: [string, Account, Account][] = [
    ['alice with bob', cast.alice, cast.bob],
    ['bob with alice', cast.bob, cast.alice],
    ['alice with carol', cast.alice, cast.carol],
  ];
  const numbers: TestCase[] = pairs.map(([comment, local, remote]) => {
    const sn = safetyNumber(local.publicKey, remote.publicKey, cast.provider);
    const expected = [digits(fingerprint(local.publicKey)), digits(fingerprint(remote.publicKey))].sort().join('');
    if (sn.digits !== expected) throw new Error('safety number differs from the derivation');
    return {
      comment,
      localAccountKey: hex(local.publicKey),
      remoteAccountKey: hex(remote.publicKey),
      digits: sn.digits,
      scannable: hex(sn.scannable),
      result: 'valid',
    };
  });
  const ab = safetyNumber(cast.alice.publicKey, cast.bob.publicKey, cast.provider);
  const ba = safetyNumber(cast.bob.publicKey, cast.alice.publicKey, cast.provider);
  const ac = safetyNumber(cast.alice.publicKey, cast.carol.publicKey, cast.provider);
  const scan = (comment: string, scanned: Uint8Array, valid: boolean, local = cast.alice, remote = cast.bob): TestCase => {
    const ours = safetyNumber(local.publicKey, remote.publicKey, cast.provider);
    if (verifyScannedSafetyNumber(ours, scanned) !== valid) throw new Error(`scan case "${comment}" disagrees with core`);
    return {
      comment,
      localAccountKey: hex(local.publicKey),
      remoteAccountKey: hex(remote.publicKey),
      scanned: hex(scanned),
      result: valid ? 'valid' : 'invalid',
    };
  };
  const self = safetyNumber(cast.alice.publicKey, cast.alice.publicKey, cast.provider);
  const file: VectorFile = {
    description: 'Safety numbers: fingerprints of account keys, the 60 digits both people see, and the scannable payload.',
    spec: 'spec/02-keys.md §7',
    version: 1,
    protocolVersion: PROTOCOL_VERSION,
    notes: {
      fingerprint: `h = UTF-8(${JSON.stringify(Label.safetyNumber)}) || accountKey, then ${limits.SAFETY_NUMBER_ITERATIONS} times h = SHA-512(h || accountKey); digits: each of the first six 5-byte groups of h, read big-endian, mod 100000, as 5 decimal digits.`,
      number:
        "digits = the two people's 30-digit strings, the smaller first; scannable = CBOR([1, local fingerprint[0..32], remote fingerprint[0..32]]).",
      scanning:
        'Verifying a scanned payload returns true or false; it never throws. Invalid cases here must return false (they carry no error code).',
    },
    testGroups: [
      {
        type: 'Fingerprint',
        spec: 'spec/02-keys.md §7.1-§7.2',
        description: 'The fingerprint of one account key and its 30 digits.',
        tests: fingerprints,
      },
      {
        type: 'SafetyNumber',
        spec: 'spec/02-keys.md §7.2-§7.3',
        description: 'The safety number and scannable payload of the local account for the remote one.',
        tests: numbers,
      },
      {
        type: 'ScannedSafetyNumber',
        spec: 'spec/02-keys.md §7.4',
        description:
          "The local side (its own safety number for remote) scans the other side's payload: valid cases verify, invalid ones return false.",
        tests: [
          scan("bob's payload, scanned by alice", ba.scannable, true),
          scan("alice's payload, scanned by bob", ab.scannable, true, cast.bob, cast.alice),
          scan('our own payload shown back to us (fingerprints in the wrong order)', ab.scannable, false),
          scan(
            "carol's view of alice (another person's payload)",
            safetyNumber(cast.carol.publicKey, cast.alice.publicKey).scannable,
            false,
          ),
          scan('alice-with-carol payload scanned while comparing with bob', ac.scannable, false),
          scan('payload version 2', setField(ba.scannable, [0], 2), false),
          scan('payload cut short', truncate(ba.scannable), false),
          scan('both fingerprints the same (a payload of alice with herself)', self.scannable, false, cast.alice, cast.alice),
        ],
      },
    ],
  };
  return finish(file);
}

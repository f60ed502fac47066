/**
 * records.json: the stored forms of accounts, devices, prekey stores and
 * session records ("storage stability"): each must load, save back to the
 * same bytes and keep working (a session record decrypts the messages that
 * arrived after it was saved). Then records that must be refused.
 * Pins spec/05-wire-format.md §6.
 */
import { PROTOCOL_VERSION, SessionRecord, encodeBundle, fromUtf8, utf8 } from '@parley/core';
import { type Cast, accountJson, deviceJson } from '../lib/cast.ts';
import { appendField, editField, flipInField, indefiniteArray, setField, truncate } from '../lib/mutate.ts';
import { type TestCase, type TestGroup, type VectorFile, finish, hex } from '../lib/vector-file.ts';
import type { ConversationRun, Role } from './ratchet.ts';

function sessionCase(run: ConversationRun, party: Role, afterStep: number, count: number, comment: string): TestCase {
  const record = run.snapshots[afterStep]?.[party];
  if (!record) throw new Error(`no ${party} record after step ${afterStep}`);
  const later = run.receives.filter((r) => r.recipient === party && r.step > afterStep).slice(0, count);
  return {
    comment,
    conversation: run.name,
    afterStep,
    party,
    record: hex(record),
    decrypts: later.map((r) => {
      const m = run.messages.get(r.name) as { bytes: Uint8Array; plaintext: string };
      return {
        name: r.name,
        message: hex(m.bytes),
        plaintext: hex(utf8(m.plaintext)),
        newRatchetPrivateKey: r.newRatchetPrivateKey ? hex(r.newRatchetPrivateKey) : null,
      };
    }),
    result: 'valid',
  };
}

/** Alice's final record with a second session started on top: the conversation's session is archived. */
function archivedCase(cast: Cast, run: ConversationRun): TestCase {
  const alice = SessionRecord.deserialize(run.records.initiator.serialize(), cast.provider);
  const bob = SessionRecord.deserialize(run.records.responder.serialize(), cast.provider);
  const bundle = cast.bobPrekeys.bundle({ oneTimePreKey: false, oneTimeKemPreKey: false });
  const labels = ['records.archive.ephemeralPrivateKey', 'records.archive.kemEncapsulationRandomness', 'records.archive.ratchetPrivateKey'];
  cast.rng.run(
    labels.map((l) => [l, 32] as const),
    () => alice.initiate(cast.aliceDevice1, bundle),
  );
  const plaintext = 'Sent on the old session after alice started a new one.';
  const message = bob.encrypt(utf8(plaintext));
  const record = alice.serialize();
  const check = SessionRecord.deserialize(record, cast.provider);
  if (fromUtf8(check.decrypt(message).plaintext) !== plaintext) throw new Error('archived session does not decrypt');
  const [ephemeralPrivateKey, kemEncapsulationRandomness, initiatorRatchetPrivateKey] = labels.map((l) => hex(cast.rng.drawn(l))) as [
    string,
    string,
    string,
  ];
  return {
    comment:
      "alice's record after the conversation's last step, then a new session initiated from the bundle (the conversation's session is archived); bob answers on the old session",
    conversation: run.name,
    afterStep: run.snapshots.length - 1,
    party: 'initiator',
    initiate: { bundle: hex(encodeBundle(bundle)), ephemeralPrivateKey, kemEncapsulationRandomness, initiatorRatchetPrivateKey },
    record: hex(record),
    decrypts: [{ name: 'b7', message: hex(message), plaintext: hex(utf8(plaintext)), newRatchetPrivateKey: null }],
    result: 'valid',
  };
}

export function recordsFile(cast: Cast, run: ConversationRun): string {
  const account = cast.alice.serialize();
  const device = cast.aliceDevice1.serialize();
  const store = cast.bobPrekeys.serialize();
  const session = run.snapshots[4]?.responder as Uint8Array;
  const invalid = (kind: string, comment: string, record: Uint8Array, error: string): TestCase => ({
    comment,
    kind,
    record: hex(record),
    result: 'invalid',
    error,
  });
  const groups: TestGroup[] = [
    {
      type: 'AccountRecord',
      spec: 'spec/05-wire-format.md §6.2',
      description: 'record = CBOR(["parley/account", 1, accountSeed]).',
      tests: (['alice', 'bob'] as const).map((name) => ({
        comment: `${name}'s account`,
        ...accountJson(cast, name),
        record: hex(cast[name].serialize()),
        result: 'valid' as const,
      })),
    },
    {
      type: 'DeviceIdentityRecord',
      spec: 'spec/05-wire-format.md §6.3',
      description: 'record = CBOR(["parley/device-identity", 1, certificate (array form), signingSeed, identityPrivateKey]).',
      tests: (
        [
          [cast.aliceDevice1, 'alice.device1'],
          [cast.aliceDevice2, 'alice.device2'],
          [cast.bobDevice1, 'bob.device1'],
        ] as const
      ).map(([d, label]) => ({ comment: label, ...deviceJson(cast, d, label), record: hex(d.serialize()), result: 'valid' as const })),
    },
    {
      type: 'PreKeyStoreRecord',
      spec: 'spec/05-wire-format.md §6.4',
      description:
        "A device's prekey store, record version 2 (each signed prekey with the versions it advertises and its v2 signature, 02 §5.7); it loads only with its device (the group's device record). It is the responder's store of the named ratchet.json conversation after step afterStep (step 0: every prekey unused, as listed in that conversation's group).",
      device: hex(cast.bobDevice1.serialize()),
      tests: [
        { comment: "bob's store as generated", conversation: run.name, afterStep: 0, record: hex(store), result: 'valid' },
        {
          comment: "bob's store after the conversation's first message consumed one-time prekey 2 and KEM prekey 2",
          conversation: run.name,
          afterStep: run.snapshots.length - 1,
          record: hex(run.prekeys.serialize()),
          result: 'valid',
        },
      ],
    },
    {
      type: 'SessionRecord',
      spec: 'spec/05-wire-format.md §6.5',
      description:
        "A party's session record as saved after a step of the ratchet.json conversation. It must load, save back to the same bytes, and decrypt the listed later messages in order, with their plaintexts (a decryption that takes a DH ratchet step draws newRatchetPrivateKey).",
      tests: [
        sessionCase(run, 'initiator', 3, 2, 'the initiator after three PreKeyMessages, before any reply'),
        sessionCase(run, 'responder', 4, 3, 'the responder right after accepting the first message'),
        sessionCase(run, 'initiator', run.receivedAt.get('b0') as number, 2, 'the initiator after a late message from a stored key'),
        sessionCase(run, 'responder', run.receivedAt.get('a6') as number, 2, 'the responder holding keys stored through previousCounter'),
        archivedCase(cast, run),
      ],
    },
    {
      type: 'InvalidRecord',
      spec: 'spec/05-wire-format.md §6.1, spec/06-errors.md §3.6',
      description:
        "Loading the record as its kind (PreKeyStore with this group's device, or the test's own device when it names one) must fail with the error; a record is never partly loaded.",
      device: hex(cast.bobDevice1.serialize()),
      tests: [
        invalid('Account', 'format tag of another record kind', setField(account, [0], 'parley/device-identity'), 'BAD_RECORD'),
        invalid('Account', 'version 2', setField(account, [1], 2), 'UNSUPPORTED_VERSION'),
        invalid('Account', 'last byte cut off', truncate(account), 'BAD_RECORD'),
        invalid(
          'Account',
          'seed of 31 bytes',
          editField(account, [2], (s) => (s as Uint8Array).slice(1)),
          'BAD_RECORD',
        ),
        invalid('Account', 'array of indefinite length', indefiniteArray(account), 'BAD_RECORD'),
        invalid(
          'DeviceIdentity',
          'identity private key of another device (the certificate does not match)',
          setField(device, [4], cast.rng.drawn('alice.device2.identityPrivateKey')),
          'BAD_RECORD',
        ),
        invalid(
          'DeviceIdentity',
          'certificate signature with one bit flipped',
          editField(device, [2, 5], (s) => flipInField(s, 0)),
          'BAD_RECORD',
        ),
        invalid('DeviceIdentity', 'version 2', setField(device, [1], 2), 'UNSUPPORTED_VERSION'),
        invalid('PreKeyStore', 'current signed prekey id names no stored key', setField(store, [2, 3], 9), 'BAD_RECORD'),
        // Record version 2 is current for the prekey store (a v2 signature per signed prekey, 05 §6.4).
        invalid('PreKeyStore', 'version 3', setField(store, [1], 3), 'UNSUPPORTED_VERSION'),
        invalid(
          'PreKeyStore',
          "current signed prekey's versions rewritten to [1] (its v2 signature no longer verifies)",
          setField(store, [3, 0, 4], [1]),
          'BAD_RECORD',
        ),
        {
          ...invalid(
            'PreKeyStore',
            "bob's store loaded with alice's device 1 (its current keys carry another device's signatures)",
            store,
            'BAD_RECORD',
          ),
          device: hex(cast.aliceDevice1.serialize()),
        },
        invalid('PreKeyStore', 'format tag missing', setField(store, [0], null), 'BAD_RECORD'),
        invalid('SessionRecord', 'version 3', setField(session, [1], 3), 'UNSUPPORTED_VERSION'),
        invalid(
          'SessionRecord',
          'version 3 with five fields (tag and version are checked before the field count)',
          appendField(setField(session, [1], 3), [], null),
          'UNSUPPORTED_VERSION',
        ),
        invalid('SessionRecord', 'format tag of another record kind', setField(session, [0], 'parley/account'), 'BAD_RECORD'),
        invalid(
          'SessionRecord',
          'root key of 31 bytes',
          editField(session, [2, 5, 0], (k) => (k as Uint8Array).slice(1)),
          'BAD_RECORD',
        ),
        invalid('SessionRecord', 'last byte cut off', truncate(session), 'BAD_RECORD'),
      ],
    },
  ];
  const file: VectorFile = {
    description:
      'Stored records (storage stability): records saved by this version must load, save back byte for byte, and keep working; malformed records are refused.',
    spec: 'spec/05-wire-format.md §6',
    version: 1,
    protocolVersion: PROTOCOL_VERSION,
    notes: {
      stability:
        'A change to any record here is a storage break: it needs a new record version and a migration that still loads these bytes.',
      secrets: 'Records hold private keys; these are the test keys of the other files, never real ones.',
    },
    testGroups: groups,
  };
  return finish(file);
}

/**
 * ratchet.json: the Double Ratchet's KDFs, then a scripted conversation run
 * through core's SessionRecord (direction changes, skipped messages,
 * out-of-order and late delivery, a crossing message) with every chain
 * step, DH ratchet step and message byte written out, then deliveries that
 * must be refused. Pins spec/04-double-ratchet.md and the RatchetMessage of
 * spec/05-wire-format.md §2-§3.
 */
import {
  type CryptoBackend,
  MessageType,
  PROTOCOL_VERSION,
  type PreKeyBundle,
  type PreKeyStore,
  SessionRecord,
  certificateToCbor,
  concatBytes,
  decodeMessage,
  encodeBundle,
  encodeCbor,
  fromUtf8,
  limits,
  pad,
  utf8,
} from '@parley/core';
import { type Cast, deviceJson, freshBobPrekeys, responderJson } from '../lib/cast.ts';
import { Info, chainStep, dh, kdfRoot, pqxdh } from '../lib/derive.ts';
import { BAD_X25519_KEYS, appendField, editField, flipInField, getField, setField, truncate, withUint64 } from '../lib/mutate.ts';
import { type SessionState, currentSession } from '../lib/session-state.ts';
import { type Json, type TestCase, type TestGroup, type VectorFile, finish, hex } from '../lib/vector-file.ts';

export type Role = 'initiator' | 'responder';
type RatchetState = SessionState['ratchet'];
type Keys = { key: Uint8Array; nonce: Uint8Array };

export const CONVERSATION = 'alice-bob';

/** What other files reuse: the records after each step and the messages by name. */
export interface ConversationRun {
  readonly name: string;
  /** Serialized SessionRecords after step i (index 0: after setup). */
  readonly snapshots: readonly { initiator: Uint8Array | null; responder: Uint8Array | null }[];
  readonly messages: ReadonlyMap<string, { bytes: Uint8Array; plaintext: string; step: number }>;
  /** The step at which each message was received. */
  readonly receivedAt: ReadonlyMap<string, number>;
  /** Every receive in order, with the ratchet key it drew (if it took a DH ratchet step). */
  readonly receives: readonly { step: number; recipient: Role; name: string; newRatchetPrivateKey: Uint8Array | null }[];
  /** The live records after the last step, and the responder's prekey store. */
  readonly records: Readonly<Record<Role, SessionRecord>>;
  readonly prekeys: PreKeyStore;
}

type StoredKey = { ratchetKey: Uint8Array; counter: number; keys: Keys };

const skippedId = (ratchetKey: Uint8Array, counter: number) => `${hex(ratchetKey)}:${counter}`;

/** The receive transition spelled out (spec/04-double-ratchet.md §4), from the state before and the header. */
function explicitReceive(
  b: CryptoBackend,
  s: RatchetState,
  header: { ratchetKey: Uint8Array; previousCounter: number; counter: number },
  newRatchetPrivateKey: Uint8Array | null,
): { state: RatchetState; path: string; used: Keys; stored: StoredKey[]; dhRatchet: Json } {
  const stored: StoredKey[] = [];
  /** Stores the keys of counters from..to-1; returns the keys of `to`, and the chain keys at and after it. */
  const walk = (ck: Uint8Array, from: number, to: number, ratchetKey: Uint8Array) => {
    let chainKey = ck;
    for (let i = from; i < to; i++) {
      const st = chainStep(b, chainKey);
      stored.push({ ratchetKey, counter: i, keys: { key: st.messageKey, nonce: st.nonce } });
      chainKey = st.nextChainKey;
    }
    const last = chainStep(b, chainKey);
    return { keys: { key: last.messageKey, nonce: last.nonce }, chainKeyAt: chainKey, chainKey: last.nextChainKey };
  };
  const withStored = (map: RatchetState['skipped']) => {
    const out = new Map(map);
    for (const e of stored) out.set(skippedId(e.ratchetKey, e.counter), e.keys);
    return out;
  };

  const id = skippedId(header.ratchetKey, header.counter);
  const skippedKeys = s.skipped.get(id);
  if (skippedKeys) {
    const skipped = new Map(s.skipped);
    skipped.delete(id);
    return { state: { ...s, skipped }, path: 'storedKey', used: skippedKeys, stored, dhRatchet: null };
  }
  const index = s.receivingChains.findIndex((c) => hex(c.ratchetKey) === hex(header.ratchetKey));
  if (index >= 0) {
    const chain = s.receivingChains[index] as RatchetState['receivingChains'][number];
    const w = walk(chain.chainKey, chain.counter, header.counter, chain.ratchetKey);
    const receivingChains = s.receivingChains.slice();
    receivingChains[index] = { ratchetKey: chain.ratchetKey, chainKey: w.chainKey, counter: header.counter + 1 };
    return {
      state: { ...s, receivingChains, skipped: withStored(s.skipped) },
      path: 'currentChain',
      used: w.keys,
      stored,
      dhRatchet: null,
    };
  }

  if (!newRatchetPrivateKey) throw new Error('a DH ratchet step needs a new ratchet key');
  // Step 1: finish the previous receiving chain at previousCounter, storing the keys of the messages not yet seen.
  let chains = s.receivingChains;
  const current = chains[chains.length - 1];
  if (current && header.previousCounter > current.counter) {
    const rest = walk(current.chainKey, current.counter, header.previousCounter, current.ratchetKey);
    chains = [...chains.slice(0, -1), { ratchetKey: current.ratchetKey, chainKey: rest.chainKeyAt, counter: header.previousCounter }];
  }
  const previousChainStored = stored.length;
  const dhReceive = dh(b, s.sendingRatchetKey.privateKey, header.ratchetKey);
  const receiving = kdfRoot(b, s.rootKey, dhReceive);
  const w = walk(receiving.chainKey, 0, header.counter, header.ratchetKey);
  const newRatchetKey = b.x25519PublicKey(newRatchetPrivateKey);
  const dhSend = dh(b, newRatchetPrivateKey, header.ratchetKey);
  const sending = kdfRoot(b, receiving.rootKey, dhSend);
  const previousCounter = s.sendingChain?.counter ?? 0;
  const state: RatchetState = {
    rootKey: sending.rootKey,
    sendingRatchetKey: { privateKey: newRatchetPrivateKey, publicKey: newRatchetKey },
    sendingChain: { chainKey: sending.chainKey, counter: 0 },
    previousCounter,
    receivingChains: [...chains, { ratchetKey: header.ratchetKey, chainKey: w.chainKey, counter: header.counter + 1 }].slice(
      -limits.MAX_RECEIVER_CHAINS,
    ),
    skipped: withStored(s.skipped),
  };
  return {
    state,
    path: 'newChain',
    used: w.keys,
    stored,
    dhRatchet: {
      rootKey: hex(s.rootKey),
      sendingRatchetPrivateKey: hex(s.sendingRatchetKey.privateKey),
      previousChainKeysStored: previousChainStored,
      dhReceive: hex(dhReceive),
      rootKeyAfterReceive: hex(receiving.rootKey),
      receivingChainKey: hex(receiving.chainKey),
      newRatchetPrivateKey: hex(newRatchetPrivateKey),
      newRatchetKey: hex(newRatchetKey),
      dhSend: hex(dhSend),
      rootKeyAfterSend: hex(sending.rootKey),
      sendingChainKey: hex(sending.chainKey),
      previousCounter,
    },
  };
}

/** A RatchetState as comparable text (the skipped keys in their stored order). */
function stateText(s: RatchetState): string {
  return JSON.stringify({
    rootKey: hex(s.rootKey),
    sending: [hex(s.sendingRatchetKey.privateKey), hex(s.sendingRatchetKey.publicKey)],
    chain: s.sendingChain ? [hex(s.sendingChain.chainKey), s.sendingChain.counter] : null,
    pn: s.previousCounter,
    receiving: s.receivingChains.map((c) => [hex(c.ratchetKey), hex(c.chainKey), c.counter]),
    skipped: [...s.skipped].map(([id, k]) => [id, hex(k.key), hex(k.nonce)]),
  });
}

/** What the responder's first receive starts from (spec/04-double-ratchet.md §3). */
interface HandshakeSecrets {
  sharedSecret: Uint8Array;
  associatedData: Uint8Array;
  signedPreKeyPrivate: Uint8Array;
  signedPreKey: Uint8Array;
}

class Conversation {
  readonly steps: Json[] = [];
  readonly messages = new Map<string, { bytes: Uint8Array; plaintext: string; step: number }>();
  readonly receivedAt = new Map<string, number>();
  readonly receives: ConversationRun['receives'][number][] = [];
  readonly snapshots: { initiator: Uint8Array | null; responder: Uint8Array | null }[] = [];
  readonly records: Record<Role, SessionRecord | null>;
  readonly #cast: Cast;
  readonly #handshake: HandshakeSecrets;
  readonly prekeys: PreKeyStore;
  #ratchetKeys: Record<Role, number> = { initiator: 1, responder: 0 };

  constructor(cast: Cast, initiator: SessionRecord, handshake: HandshakeSecrets) {
    this.#cast = cast;
    this.records = { initiator, responder: null };
    this.#handshake = handshake;
    this.prekeys = freshBobPrekeys(cast);
    this.#snapshot();
  }

  #snapshot(): void {
    this.snapshots.push({ initiator: this.records.initiator?.serialize() ?? null, responder: this.records.responder?.serialize() ?? null });
  }

  send(sender: Role, name: string, plaintext: string): void {
    const b = this.#cast.backend;
    const record = this.records[sender];
    if (!record) throw new Error(`${sender} has no session`);
    const before = currentSession(record);
    const r = before.ratchet;
    const chain = r.sendingChain;
    if (!chain) throw new Error('no sending chain');
    const bytes = record.encrypt(utf8(plaintext));

    const st = chainStep(b, chain.chainKey);
    const headerBytes = encodeCbor([r.sendingRatchetKey.publicKey, r.previousCounter, chain.counter]);
    const padded = pad(utf8(plaintext));
    const aeadAssociatedData = concatBytes(before.associatedData, headerBytes);
    const ciphertext = b.aeadSeal(st.messageKey, st.nonce, padded, aeadAssociatedData);
    const ratchetMessage = encodeCbor([PROTOCOL_VERSION, MessageType.ratchet, headerBytes, ciphertext]);
    const p = before.pendingPreKey;
    const expected = p
      ? encodeCbor([
          PROTOCOL_VERSION,
          MessageType.preKey,
          certificateToCbor(p.localCertificate),
          before.baseKey,
          p.signedPreKeyId,
          p.oneTimePreKeyId,
          p.kemPreKeyId,
          p.kemCiphertext,
          ratchetMessage,
        ])
      : ratchetMessage;
    if (hex(expected) !== hex(bytes)) throw new Error(`send ${name}: core's message differs from the derivation`);

    const step = this.steps.length + 1;
    this.messages.set(name, { bytes, plaintext, step });
    this.steps.push({
      step,
      action: 'send',
      sender,
      name,
      plaintext: hex(utf8(plaintext)),
      messageType: p ? 'PreKeyMessage' : 'RatchetMessage',
      ratchetKey: hex(r.sendingRatchetKey.publicKey),
      previousCounter: r.previousCounter,
      counter: chain.counter,
      chainKey: hex(chain.chainKey),
      messageKey: hex(st.messageKey),
      nonce: hex(st.nonce),
      nextChainKey: hex(st.nextChainKey),
      headerBytes: hex(headerBytes),
      paddedPlaintext: hex(padded),
      aeadAssociatedData: hex(aeadAssociatedData),
      ciphertext: hex(ciphertext),
      message: hex(bytes),
    });
    this.#snapshot();
  }

  receive(recipient: Role, name: string): void {
    const cast = this.#cast;
    const b = cast.backend;
    const m = this.messages.get(name);
    if (!m) throw new Error(`no message ${name}`);
    const decoded = decodeMessage(m.bytes);
    const inner = decoded.type === 'prekey' ? decoded.message : decoded;
    if (inner.type !== 'ratchet') throw new Error(`receive ${name}: not a v1 message`);
    const existing = this.records[recipient];
    const before: RatchetState = existing
      ? currentSession(existing).ratchet
      : {
          rootKey: this.#handshake.sharedSecret,
          sendingRatchetKey: { privateKey: this.#handshake.signedPreKeyPrivate, publicKey: this.#handshake.signedPreKey },
          sendingChain: null,
          previousCounter: 0,
          receivingChains: [],
          skipped: new Map(),
        };
    const needsKey =
      !before.skipped.has(skippedId(inner.header.ratchetKey, inner.header.counter)) &&
      !before.receivingChains.some((c) => hex(c.ratchetKey) === hex(inner.header.ratchetKey));
    const who = recipient === 'initiator' ? 'alice' : 'bob';
    const label = `conversation.${who}.ratchetPrivateKey${this.#ratchetKeys[recipient] + 1}`;
    const record = existing ?? new SessionRecord(cast.provider);
    const result = cast.rng.run(needsKey ? [[label, 32]] : [], () =>
      record.decrypt(m.bytes, existing ? {} : { device: cast.bobDevice1, prekeys: this.prekeys, expectedAccountKey: cast.alice.publicKey }),
    );
    if (needsKey) this.#ratchetKeys[recipient]++;
    this.records[recipient] = record;
    if (fromUtf8(result.plaintext) !== m.plaintext) throw new Error(`receive ${name}: wrong plaintext`);

    const x = explicitReceive(b, before, inner.header, needsKey ? cast.rng.drawn(label) : null);
    const after = currentSession(record).ratchet;
    if (stateText(after) !== stateText(x.state)) throw new Error(`receive ${name}: core's state differs from the derivation`);

    const step = this.steps.length + 1;
    this.receivedAt.set(name, step);
    this.receives.push({ step, recipient, name, newRatchetPrivateKey: needsKey ? cast.rng.drawn(label) : null });
    this.steps.push({
      step,
      action: 'receive',
      recipient,
      name,
      path: existing ? x.path : 'newSession',
      ...(existing ? {} : { sharedSecret: hex(this.#handshake.sharedSecret), associatedData: hex(this.#handshake.associatedData) }),
      dhRatchet: x.dhRatchet,
      keysStored: x.stored.map((e) => ({
        ratchetKey: hex(e.ratchetKey),
        counter: e.counter,
        messageKey: hex(e.keys.key),
        nonce: hex(e.keys.nonce),
      })),
      messageKey: hex(x.used.key),
      nonce: hex(x.used.nonce),
      plaintext: hex(utf8(m.plaintext)),
    });
    this.#snapshot();
  }
}

/** The scripted conversation; other files reuse its records. */
export function runConversation(cast: Cast): { run: ConversationRun; group: TestGroup; bundle: PreKeyBundle } {
  const { rng, backend: b } = cast;
  const store = cast.bobPrekeys;
  const bundle: PreKeyBundle = { ...store.bundle(), oneTimePreKey: store.oneTimePreKeys()[1] ?? null };
  const draws = {
    ephemeralPrivateKey: 'conversation.alice.ephemeralPrivateKey',
    kemEncapsulationRandomness: 'conversation.alice.kemEncapsulationRandomness',
    ratchetPrivateKey: 'conversation.alice.ratchetPrivateKey1',
  };
  const initiator = rng.run(
    [
      [draws.ephemeralPrivateKey, 32],
      [draws.kemEncapsulationRandomness, 32],
      [draws.ratchetPrivateKey, 32],
    ],
    () => SessionRecord.initiate(cast.aliceDevice1, bundle, { expectedAccountKey: cast.bob.publicKey }),
  );
  const v = pqxdh(b, {
    initiatorIdentityPrivateKey: rng.drawn('alice.device1.identityPrivateKey'),
    ephemeralPrivateKey: rng.drawn(draws.ephemeralPrivateKey),
    kemEncapsulationRandomness: rng.drawn(draws.kemEncapsulationRandomness),
    initiatorCertificate: cast.aliceDevice1.certificate,
    responderCertificate: bundle.certificate,
    signedPreKey: bundle.signedPreKey.publicKey,
    oneTimePreKey: bundle.oneTimePreKey?.publicKey ?? null,
    kemPreKey: bundle.kemPreKey.publicKey,
  });
  const ratchetPrivateKey = rng.drawn(draws.ratchetPrivateKey);
  const first = kdfRoot(b, v.sharedSecret, dh(b, ratchetPrivateKey, bundle.signedPreKey.publicKey));
  const c = new Conversation(cast, initiator, {
    sharedSecret: v.sharedSecret,
    associatedData: v.associatedData,
    signedPreKeyPrivate: rng.drawn('bob.device1.signedPreKey1.privateKey'),
    signedPreKey: bundle.signedPreKey.publicKey,
  });

  const A: Role = 'initiator';
  const B: Role = 'responder';
  c.send(A, 'a0', 'Hi Bob, this is the first message.');
  c.send(A, 'a1', 'Second, sent before any reply.');
  c.send(A, 'a2', 'Third: its keys come from the same chain.');
  c.receive(B, 'a0'); // new session, and bob's first DH ratchet step
  c.receive(B, 'a2'); // a1 skipped: its key is stored
  c.send(B, 'b0', 'Hello Alice.');
  c.send(B, 'b1', `A longer reply that crosses the first padding bucket: ${'x'.repeat(150)}`);
  c.receive(A, 'b1'); // out of order: alice's DH ratchet step, b0's key stored
  c.send(A, 'a3', 'Now I send RatchetMessages.');
  c.send(A, 'a4', '');
  c.receive(B, 'a1'); // late, from a stored key of the first chain
  c.receive(B, 'a3'); // bob's second DH ratchet step
  c.receive(A, 'b0'); // late, after alice turned her ratchet
  c.send(B, 'b2', 'Third chain of mine.');
  c.send(A, 'a5', 'Crossing: sent before I read b2.');
  c.receive(A, 'b2');
  c.send(A, 'a6', 'After b2: a new chain with previousCounter 3.');
  c.receive(B, 'a6'); // a4 and a5 missing from the previous chain: stored via previousCounter
  c.receive(B, 'a5');
  c.receive(B, 'a4');
  c.send(B, 'b3', 'one');
  c.send(B, 'b4', 'two');
  c.send(B, 'b5', 'three');
  c.receive(A, 'b5');
  c.receive(A, 'b3');
  c.send(A, 'a7', 'Got three; two is still missing.');
  c.receive(B, 'a7');
  c.receive(A, 'b4'); // very late: alice has sent on a newer chain since
  c.send(B, 'b6', 'Bye.');
  c.receive(A, 'b6');

  const group: TestGroup = {
    type: 'Conversation',
    spec: 'spec/04-double-ratchet.md §3-§4, §6; spec/05-wire-format.md §3-§4',
    description:
      "A scripted conversation between the initiator (alice device 1) and the responder (bob device 1, prekeys unused). Setup: the initiator creates the session from the bundle with the setup's random values (handshake.json shows every step of that). Then each step either sends (the sender's chain before the message, the derived keys and the bytes) or receives (which key decrypts it: a stored key, the current chain, or a new chain after a DH ratchet step, with the keys stored for skipped messages in the order they are stored). Every receive must yield plaintext.",
    initiator: deviceJson(cast, cast.aliceDevice1, 'alice.device1'),
    responder: responderJson(cast),
    tests: [
      {
        comment: 'direction changes, skipped messages, out-of-order and late delivery, a crossing message',
        name: CONVERSATION,
        setup: {
          bundle: hex(encodeBundle(bundle)),
          ephemeralPrivateKey: hex(rng.drawn(draws.ephemeralPrivateKey)),
          kemEncapsulationRandomness: hex(rng.drawn(draws.kemEncapsulationRandomness)),
          initiatorRatchetPrivateKey: hex(ratchetPrivateKey),
          sharedSecret: hex(v.sharedSecret),
          associatedData: hex(v.associatedData),
          rootKey: hex(first.rootKey),
          sendingChainKey: hex(first.chainKey),
        },
        steps: c.steps,
        result: 'valid',
      },
    ],
  };
  const records = c.records as Record<Role, SessionRecord>;
  const run: ConversationRun = {
    name: CONVERSATION,
    snapshots: c.snapshots,
    messages: c.messages,
    receivedAt: c.receivedAt,
    receives: c.receives,
    records,
    prekeys: c.prekeys,
  };
  return { run, group, bundle };
}

/** A message the sender could have sent next, built from its stored state with a chosen padded body. */
function forgeNext(cast: Cast, record: Uint8Array, padded: Uint8Array): Uint8Array {
  const b = cast.backend;
  const s = currentSession(SessionRecord.deserialize(record, cast.provider));
  const chain = s.ratchet.sendingChain;
  if (!chain) throw new Error('no sending chain');
  const headerBytes = encodeCbor([s.ratchet.sendingRatchetKey.publicKey, s.ratchet.previousCounter, chain.counter]);
  const st = chainStep(b, chain.chainKey);
  const ciphertext = b.aeadSeal(st.messageKey, st.nonce, padded, concatBytes(s.associatedData, headerBytes));
  return encodeCbor([PROTOCOL_VERSION, MessageType.ratchet, headerBytes, ciphertext]);
}

/** A PreKeyMessage from alice's device 2 to bob (same account as the conversation's peer, another device). */
function otherDeviceMessage(cast: Cast): Uint8Array {
  const bundle = cast.bobPrekeys.bundle({ oneTimeKemPreKey: false });
  const labels = [
    'conversation.invalid.device2.ephemeralPrivateKey',
    'conversation.invalid.device2.kemEncapsulationRandomness',
    'conversation.invalid.device2.ratchetPrivateKey',
  ];
  const record = cast.rng.run(
    labels.map((l) => [l, 32] as const),
    () => SessionRecord.initiate(cast.aliceDevice2, bundle, { expectedAccountKey: cast.bob.publicKey }),
  );
  return record.encrypt(utf8('From my second device.'));
}

function deliveryGroup(cast: Cast, run: ConversationRun): TestGroup {
  const msg = (name: string) => (run.messages.get(name) as { bytes: Uint8Array }).bytes;
  const sentAt = (name: string) => (run.messages.get(name) as { step: number }).step;
  const receivedAt = (name: string) => run.receivedAt.get(name) as number;
  const snapshot = (step: number, role: Role) => run.snapshots[step]?.[role] as Uint8Array;
  const deliver = (comment: string, afterStep: number, recipient: Role, message: Uint8Array, error: string): TestCase => ({
    comment,
    conversation: run.name,
    afterStep,
    recipient,
    message: hex(message),
    result: 'invalid',
    error,
  });
  const header = (name: string) => getField(msg(name), [2]) as Uint8Array;
  const withHeader = (name: string, ratchetKey: Uint8Array, previousCounter: number, counter: number) =>
    setField(msg(name), [2], encodeCbor([ratchetKey, previousCounter, counter]));
  const a3Key = getField(header('a3'), [0]) as Uint8Array;
  const unknownKey = cast.backend.x25519PublicKey(cast.rng.value('conversation.invalid.unknownRatchetPrivateKey', 32));
  // Once bob has read a3 he holds alice's second chain at counter 1 (a4 is next).
  const afterA3 = receivedAt('a3');
  // Once alice has read b1 she holds bob's first chain at counter 2; bob's record right after sending b1 could send counter 2.
  const aliceGotB1 = receivedAt('b1');
  const padding = (body: Uint8Array) => forgeNext(cast, snapshot(sentAt('b1'), 'responder'), body);
  const last = run.snapshots.length - 1;
  return {
    type: 'ConversationDelivery',
    spec: 'spec/04-double-ratchet.md §4, §4.6, §6.3; spec/06-errors.md §3.4',
    description:
      "Each message is delivered to the recipient's session record as it stood after step afterStep of the named conversation (with withDeviceAndPrekeys, also with the responder's device and its prekey store as it stood then). Decrypting it must fail with the error and leave the record (and the prekey store) unchanged. Where randomDraws is given, the recipient must have drawn exactly that many 32-byte random values before refusing (04 §4.6: the new sending ratchet key of a DH step is drawn after the AEAD has authenticated the message and before the padding is checked).",
    tests: [
      deliver('the first PreKeyMessage again, on the session it created', receivedAt('a0'), 'responder', msg('a0'), 'DUPLICATE_MESSAGE'),
      deliver(
        'the first PreKeyMessage again with its kemCiphertext altered (the same base key must bring the same handshake fields)',
        receivedAt('a0'),
        'responder',
        editField(msg('a0'), [7], (f) => flipInField(f, 0)),
        'DECRYPT_FAILED',
      ),
      deliver('a2 again (same chain, counter already passed)', receivedAt('a2'), 'responder', msg('a2'), 'DUPLICATE_MESSAGE'),
      deliver('a1 again after its stored key was used', receivedAt('a1'), 'responder', msg('a1'), 'DUPLICATE_MESSAGE'),
      deliver('a0 again at the end of the conversation', last, 'responder', msg('a0'), 'DUPLICATE_MESSAGE'),
      deliver('b4 again at the end of the conversation', last, 'initiator', msg('b4'), 'DUPLICATE_MESSAGE'),
      deliver(
        'a4 with its AEAD tag altered (current chain)',
        afterA3,
        'responder',
        editField(msg('a4'), [3], (f) => flipInField(f, -1)),
        'DECRYPT_FAILED',
      ),
      deliver(
        'b0 with its header previousCounter altered (a stored key; the header is authenticated)',
        aliceGotB1,
        'initiator',
        withHeader('b0', getField(header('b0'), [0]) as Uint8Array, 5, 0),
        'DECRYPT_FAILED',
      ),
      {
        ...deliver(
          'a4 with the ratchet key of another chain in its header (a new chain: a DH step that does not authenticate, so nothing is drawn)',
          afterA3,
          'responder',
          withHeader('a4', unknownKey, 0, 1),
          'DECRYPT_FAILED',
        ),
        randomDraws: 0,
      },
      deliver(
        `exactly ${limits.MAX_FORWARD_JUMP} messages ahead in the current chain: allowed, then fails authentication`,
        afterA3,
        'responder',
        withHeader('a4', a3Key, 3, 1 + limits.MAX_FORWARD_JUMP),
        'DECRYPT_FAILED',
      ),
      deliver(
        `${limits.MAX_FORWARD_JUMP + 1} messages ahead in the current chain`,
        afterA3,
        'responder',
        withHeader('a4', a3Key, 3, 2 + limits.MAX_FORWARD_JUMP),
        'TOO_FAR_AHEAD',
      ),
      deliver(
        `a new chain whose first message is ${limits.MAX_FORWARD_JUMP + 1} ahead`,
        afterA3,
        'responder',
        withHeader('a4', unknownKey, 2, 1 + limits.MAX_FORWARD_JUMP),
        'TOO_FAR_AHEAD',
      ),
      deliver(
        `a new chain whose previousCounter leaves ${limits.MAX_FORWARD_JUMP + 1} messages of the current chain unseen`,
        afterA3,
        'responder',
        withHeader('a4', unknownKey, 2 + limits.MAX_FORWARD_JUMP, 0),
        'TOO_FAR_AHEAD',
      ),
      ...BAD_X25519_KEYS.slice(0, 4).map(({ name, key }) =>
        deliver(`header ratchetKey is the ${name}`, afterA3, 'responder', withHeader('a4', key, 0, 0), 'BAD_PUBLIC_KEY'),
      ),
      // A wrong-length X25519 key is a shape error (01 §2.3, 02 §2.3): MALFORMED, never BAD_PUBLIC_KEY.
      deliver(
        'header ratchetKey of 33 bytes (a wrong-length X25519 key is MALFORMED)',
        afterA3,
        'responder',
        withHeader('a4', new Uint8Array(33).fill(9), 0, 0),
        'MALFORMED',
      ),
      {
        ...deliver(
          'authentic next message whose plaintext has no 0x80 marker (all zero; the current chain: nothing is drawn)',
          aliceGotB1,
          'initiator',
          padding(new Uint8Array(160)),
          'BAD_PADDING',
        ),
        randomDraws: 0,
      },
      deliver(
        'authentic next message whose padding has a non-zero byte after the marker',
        aliceGotB1,
        'initiator',
        padding(Uint8Array.of(...utf8('hi'), 0x80, 0x01, ...new Uint8Array(156))),
        'BAD_PADDING',
      ),
      deliver('authentic next message with an empty padded plaintext', aliceGotB1, 'initiator', padding(new Uint8Array(0)), 'BAD_PADDING'),
      // 04 §4.6: the one draw of decryption (the new sending ratchet key of a DH step) comes after the
      // AEAD and before the padding check, so these cases pin how many values the refusal consumed.
      {
        ...deliver(
          "authentic first message of bob's third chain (a DH ratchet step for alice) whose plaintext has no 0x80 marker",
          receivedAt('b2') - 1,
          'initiator',
          forgeNext(cast, snapshot(sentAt('b2') - 1, 'responder'), new Uint8Array(160)),
          'BAD_PADDING',
        ),
        randomDraws: 1,
      },
      deliver(
        'ciphertext of 15 bytes (shorter than the tag)',
        afterA3,
        'responder',
        setField(msg('a4'), [3], new Uint8Array(15)),
        'MALFORMED',
      ),
      deliver('RatchetMessage with five fields', afterA3, 'responder', appendField(msg('a4'), [], 0), 'MALFORMED'),
      deliver('header with two fields', afterA3, 'responder', setField(msg('a4'), [2], encodeCbor([a3Key, 0])), 'MALFORMED'),
      deliver(
        'header counter 2^32 in the 8-byte integer form (outside the subset)',
        afterA3,
        'responder',
        setField(
          msg('a4'),
          [2],
          withUint64((x) => encodeCbor([a3Key, 3, x]), 2n ** 32n),
        ),
        'MALFORMED',
      ),
      deliver('header counter 2^32 written as a float64', afterA3, 'responder', withHeader('a4', a3Key, 3, 2 ** 32), 'MALFORMED'),
      deliver('last byte cut off', afterA3, 'responder', truncate(msg('a4')), 'MALFORMED'),
      deliver('version 3', afterA3, 'responder', setField(msg('a4'), [0], 3), 'UNSUPPORTED_VERSION'),
      deliver(
        'a v1 message relabelled version 2 (its 37-byte header is no EncryptedHeader)',
        afterA3,
        'responder',
        setField(msg('a4'), [0], 2),
        'MALFORMED',
      ),
      deliver(
        'header counter 0xffffffff (a sender never uses it, so a header may not carry it)',
        afterA3,
        'responder',
        withHeader('a4', a3Key, 3, 0xffffffff),
        'OVERSIZED',
      ),
      deliver('header previousCounter 0xffffffff', afterA3, 'responder', withHeader('a4', a3Key, 0xffffffff, 1), 'OVERSIZED'),
      deliver(
        "a5 again, after its key (stored when alice's next chain began) was used",
        receivedAt('a5'),
        'responder',
        msg('a5'),
        'DUPLICATE_MESSAGE',
      ),
      deliver(
        'a4 again at the end of the conversation (its key was stored at a DH step)',
        last,
        'responder',
        msg('a4'),
        'DUPLICATE_MESSAGE',
      ),
      {
        ...deliver(
          "a new session from alice's device 2 delivered to bob's record for alice's device 1 (with bob's device and prekeys)",
          last,
          'responder',
          otherDeviceMessage(cast),
          'IDENTITY_MISMATCH',
        ),
        withDeviceAndPrekeys: true,
      },
    ],
  };
}

export function ratchetFile(cast: Cast): { text: string; run: ConversationRun } {
  const { rng, backend: b } = cast;
  const kdfRk: TestCase[] = [1, 2, 3].map((i) => {
    const rootKey = rng.value(`kdf.rootKey${i}`, 32);
    const dhOutput = rng.value(`kdf.dhOutput${i}`, 32);
    const out = kdfRoot(b, rootKey, dhOutput);
    return {
      comment: `random inputs ${i}`,
      rootKey: hex(rootKey),
      dhOutput: hex(dhOutput),
      nextRootKey: hex(out.rootKey),
      chainKey: hex(out.chainKey),
      result: 'valid',
    };
  });
  let ck = rng.value('kdf.chainKey', 32);
  const kdfCk: TestCase[] = [];
  for (let i = 0; i < 4; i++) {
    const st = chainStep(b, ck);
    kdfCk.push({
      comment: `chain step ${i}`,
      chainKey: hex(ck),
      messageKey: hex(st.messageKey),
      nonce: hex(st.nonce),
      nextChainKey: hex(st.nextChainKey),
      result: 'valid',
    });
    ck = st.nextChainKey;
  }
  const { run, group } = runConversation(cast);
  const file: VectorFile = {
    description:
      'The Double Ratchet: KDF_RK, KDF_CK, and a scripted conversation with every key and byte, then deliveries that must be refused.',
    spec: 'spec/04-double-ratchet.md',
    version: 1,
    protocolVersion: PROTOCOL_VERSION,
    notes: {
      kdf: `KDF_RK(rootKey, dhOutput) = HKDF-SHA256(ikm = dhOutput, salt = rootKey, info = ${JSON.stringify(fromUtf8(Info.rootChain))}, 64 bytes) = nextRootKey || chainKey. KDF_CK(chainKey): messageKey = HMAC-SHA256(chainKey, 0x01), nonce = first 12 bytes of HMAC-SHA256(chainKey, 0x03), nextChainKey = HMAC-SHA256(chainKey, 0x02).`,
      message:
        'headerBytes = CBOR([ratchetKey, previousCounter, counter]); ciphertext = ChaCha20-Poly1305(messageKey, nonce, paddedPlaintext, aad = associatedData || headerBytes); RatchetMessage = CBOR([1, 2, headerBytes, ciphertext]). Until the initiator has received a reply, each of its messages is wrapped in a PreKeyMessage (handshake.json).',
      randomness: 'setup and dhRatchet.newRatchetPrivateKey hold every random value; KDF inputs are arbitrary fixed bytes.',
    },
    testGroups: [
      { type: 'KDF_RK', spec: 'spec/04-double-ratchet.md §2.1', description: 'The root-key KDF.', tests: kdfRk },
      {
        type: 'KDF_CK',
        spec: 'spec/04-double-ratchet.md §2.2',
        description: 'The chain-key KDF, four steps along one chain.',
        tests: kdfCk,
      },
      group,
      deliveryGroup(cast, run),
    ],
  };
  return { text: finish(file), run };
}

/** ratchet.json against spec/04-double-ratchet.md. Returns each conversation's states for records.json. */
import { Mismatch, refuses, same } from '../lib/check.mjs';
import { fromHex as h, toHex } from '../lib/hex.mjs';
import { deviceFrom, prekeysFrom } from '../lib/parties.mjs';
import { kdfChain, kdfRoot } from '../lib/ratchet.mjs';
import { PreKeyStore, SessionRecord, startSession } from '../lib/records.mjs';
import { decodeBundle } from '../lib/structures.mjs';

const DH_FIELDS = [
  'rootKey',
  'sendingRatchetPrivateKey',
  'previousChainKeysStored',
  'dhReceive',
  'rootKeyAfterReceive',
  'receivingChainKey',
  'newRatchetPrivateKey',
  'newRatchetKey',
  'dhSend',
  'rootKeyAfterSend',
  'sendingChainKey',
  'previousCounter',
];

const storedText = (entries) =>
  JSON.stringify(
    entries.map((e) => ({
      ratchetKey: e.ratchetKey instanceof Uint8Array ? toHex(e.ratchetKey) : e.ratchetKey,
      counter: e.counter,
      messageKey: toHex(e.key ?? h(e.messageKey)),
      nonce: e.nonce instanceof Uint8Array ? toHex(e.nonce) : e.nonce,
    })),
  );

/** Runs one conversation; returns the encoded records and prekey store after each step. */
function runConversation(g, t) {
  const alice = deviceFrom(g.initiator);
  const bob = deviceFrom(g.responder);
  const prekeys = prekeysFrom(g.responder);
  const s = t.setup;
  const records = { initiator: new SessionRecord(), responder: new SessionRecord() };
  const started = startSession(records.initiator, alice, decodeBundle(h(s.bundle)), h(g.responder.accountKey), {
    ephemeralPrivateKey: h(s.ephemeralPrivateKey),
    kemEncapsulationRandomness: h(s.kemEncapsulationRandomness),
    ratchetPrivateKey: h(s.initiatorRatchetPrivateKey),
  });
  same('setup sharedSecret', started.handshake.sharedSecret, s.sharedSecret);
  same('setup associatedData', started.handshake.associatedData, s.associatedData);
  same('setup rootKey', records.initiator.current.ratchet.rootKey, s.rootKey);
  same('setup sendingChainKey', records.initiator.current.ratchet.sendingChain.chainKey, s.sendingChainKey);

  const snapshot = () => ({
    initiator: records.initiator.encode(),
    responder: records.responder.current ? records.responder.encode() : null,
    prekeys: prekeys.encode(),
  });
  const snapshots = [snapshot()];
  const sent = new Map();
  for (const step of t.steps) {
    const at = `step ${step.step} (${step.action} ${step.name})`;
    if (step.action === 'send') {
      const out = records[step.sender].encrypt(h(step.plaintext));
      const tr = out.trace;
      same(`${at} messageType`, out.pending ? 'PreKeyMessage' : 'RatchetMessage', step.messageType);
      same(`${at} ratchetKey`, tr.header.ratchetKey, step.ratchetKey);
      same(`${at} previousCounter`, tr.header.previousCounter, step.previousCounter);
      same(`${at} counter`, tr.header.counter, step.counter);
      same(`${at} chainKey`, tr.chain.chainKey, step.chainKey);
      same(`${at} messageKey`, tr.keys.messageKey, step.messageKey);
      same(`${at} nonce`, tr.keys.nonce, step.nonce);
      same(`${at} nextChainKey`, tr.keys.nextChainKey, step.nextChainKey);
      same(`${at} headerBytes`, tr.headerBytes, step.headerBytes);
      same(`${at} aeadAssociatedData`, tr.aeadAd, step.aeadAssociatedData);
      same(`${at} ciphertext`, tr.ciphertext, step.ciphertext);
      same(`${at} message`, out.message, step.message);
      sent.set(step.name, out.message);
    } else if (step.action === 'receive') {
      const message = sent.get(step.name);
      if (!message) throw new Mismatch(`${at}: message was never sent`);
      const context = {
        newRatchetPrivateKey: () => {
          if (!step.dhRatchet) throw new Mismatch(`${at}: a DH ratchet step, but the vector lists no new ratchet key`);
          return h(step.dhRatchet.newRatchetPrivateKey);
        },
      };
      if (!records[step.recipient].current) Object.assign(context, { device: bob, prekeys, expectedAccountKey: h(g.initiator.accountKey) });
      const out = records[step.recipient].decrypt(message, context);
      same(`${at} plaintext`, out.plaintext, step.plaintext);
      same(`${at} path`, out.newSession ? 'newSession' : out.trace.path, step.path);
      if (out.newSession) {
        same(`${at} sharedSecret`, out.handshake.sharedSecret, step.sharedSecret);
        same(`${at} associatedData`, out.handshake.associatedData, step.associatedData);
      }
      same(`${at} messageKey`, out.trace.keys.key, step.messageKey);
      same(`${at} nonce`, out.trace.keys.nonce, step.nonce);
      same(`${at} keysStored`, storedText(out.trace.stored), storedText(step.keysStored));
      if (!out.trace.dhRatchet !== !step.dhRatchet) throw new Mismatch(`${at}: DH ratchet step expected ${!!step.dhRatchet}`);
      if (out.trace.dhRatchet) for (const k of DH_FIELDS) same(`${at} dhRatchet.${k}`, out.trace.dhRatchet[k], step.dhRatchet[k]);
    } else {
      throw new Mismatch(`unknown action ${step.action}`);
    }
    snapshots.push(snapshot());
  }
  return { snapshots, records, prekeys, devices: { initiator: alice, responder: bob } };
}

export function checkRatchet(f) {
  for (const g of f.groups('KDF_RK')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const out = kdfRoot(h(t.rootKey), h(t.dhOutput));
        same('nextRootKey', out.rootKey, t.nextRootKey);
        same('chainKey', out.chainKey, t.chainKey);
      });
    }
  }
  for (const g of f.groups('KDF_CK')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const k = kdfChain(h(t.chainKey));
        same('messageKey', k.messageKey, t.messageKey);
        same('nonce', k.nonce, t.nonce);
        same('nextChainKey', k.nextChainKey, t.nextChainKey);
      });
    }
  }

  const conversations = new Map();
  for (const g of f.groups('Conversation')) {
    for (const t of g.tests) f.run(t, () => conversations.set(t.name, runConversation(g, t)));
  }

  for (const g of f.groups('ConversationDelivery')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const run = conversations.get(t.conversation);
        const snap = run?.snapshots[t.afterStep];
        const saved = snap?.[t.recipient];
        if (!saved) throw new Mismatch(`no ${t.recipient} record after step ${t.afterStep} of ${t.conversation}`);
        const record = SessionRecord.load(saved);
        same('record loads and re-encodes', record.encode(), saved);
        let draws = 0;
        const context = {
          newRatchetPrivateKey: () => {
            draws++;
            return new Uint8Array(32).fill(9);
          },
        };
        const prekeys = PreKeyStore.load(snap.prekeys, run.devices.responder);
        if (t.withDeviceAndPrekeys) Object.assign(context, { device: run.devices.responder, prekeys });
        refuses('delivery', () => record.decrypt(h(t.message), context), t.error);
        same('record after the refusal', record.encode(), saved);
        same('prekey store after the refusal', prekeys.encode(), snap.prekeys);
        if (t.randomDraws !== undefined) same('random values drawn before the refusal (04 §4.6)', draws, t.randomDraws);
      });
    }
  }
  return conversations;
}

/** groups.json against spec/08-groups.md. */
import { Mismatch, refuses, same } from '../lib/check.mjs';
import {
  acceptDistribution,
  addMembers,
  createGroup,
  decryptGroup,
  encodeGroupRecord,
  encryptGroup,
  groupStep,
  loadGroupRecord,
  memberKey,
  myDistribution,
  removeMembers,
  rotate,
} from '../lib/groups.mjs';
import { fromHex as h, toHex } from '../lib/hex.mjs';
import { deviceFrom } from '../lib/parties.mjs';
import { ed25519PublicKey } from '../lib/primitives.mjs';
import { decodeCertificate } from '../lib/structures.mjs';

const member = (m) => ({ accountKey: h(m.accountKey), deviceId: m.deviceId });
const memberText = (list) => JSON.stringify(list.map((m) => [toHex(m.accountKey), m.deviceId]));
const chainRandom = (c) => ({ chainKey: h(c.chainKey), signingSeed: h(c.signingSeed) });

/** Runs a scenario step by step; returns the encoded states after each step (index 0: before any). */
function runScenario(g, t) {
  const devices = {};
  for (const [who, d] of Object.entries(g.devices)) devices[who] = deviceFrom(d);
  const self = (who) => ({ accountKey: devices[who].certificate.accountKey, deviceId: devices[who].certificate.deviceId });
  const states = new Map();
  const distributions = new Map();
  const messages = new Map();
  const snapshots = [{}];
  for (const step of t.steps) {
    const at = `step ${step.step} (${step.action} ${step.name ?? step.party})`;
    const state = states.get(step.party);
    if (step.action !== 'create' && !state) throw new Mismatch(`${at}: ${step.party} has no group state`);
    switch (step.action) {
      case 'create': {
        same(`${at} chain signingKey`, ed25519PublicKey(h(step.chain.signingSeed)), step.chain.signingKey);
        states.set(
          step.party,
          createGroup(self(step.party), step.members.map(member), h(step.groupId), step.epoch, chainRandom(step.chain)),
        );
        break;
      }
      case 'distribute': {
        const c = step.change;
        if (step.newChain) same(`${at} new chain signingKey`, ed25519PublicKey(h(step.newChain.signingSeed)), step.newChain.signingKey);
        const out =
          c === null
            ? {
                state,
                distribution: myDistribution(state),
                recipients: [...state.members.values()].filter((m) => memberKey(m) !== memberKey(state.self)),
              }
            : c.kind === 'rotate'
              ? rotate(state, chainRandom(step.newChain))
              : c.kind === 'add'
                ? addMembers(state, c.members.map(member))
                : removeMembers(state, c.members.map(member), chainRandom(step.newChain));
        same(`${at} epochAfter`, out.state.epoch, step.epochAfter);
        same(`${at} recipients`, memberText(out.recipients), memberText(step.recipients.map(member)));
        const s = out.state.sending;
        same(`${at} epoch`, s.epoch, step.epoch);
        same(`${at} generation`, s.generation, step.generation);
        same(`${at} iteration`, s.iteration, step.iteration);
        same(`${at} chainKey`, s.chainKey, step.chainKey);
        same(`${at} signingKey`, ed25519PublicKey(s.signingSeed), step.signingKey);
        same(`${at} distribution`, out.distribution, step.distribution);
        states.set(step.party, out.state);
        distributions.set(step.name, out.distribution);
        break;
      }
      case 'accept': {
        const bytes = distributions.get(step.name);
        if (!bytes) throw new Mismatch(`${at}: distribution never sent`);
        const certificate = decodeCertificate(h(step.senderCertificate));
        same(`${at} senderCertificate`, step.senderCertificate, g.devices[step.from].certificate);
        const out = acceptDistribution(state, bytes, certificate);
        for (const k of ['generation', 'epoch', 'iteration', 'graceEnd']) same(`${at} ${k}`, out.accepted[k], step[k]);
        states.set(step.party, out.state);
        break;
      }
      case 'encrypt': {
        const out = encryptGroup(state, h(step.plaintext));
        const tr = out.trace;
        for (const [k, v] of Object.entries({ epoch: tr.chain.epoch, generation: tr.chain.generation, iteration: tr.chain.iteration })) {
          same(`${at} ${k}`, v, step[k]);
        }
        same(`${at} chainKey`, tr.chain.chainKey, step.chainKey);
        same(`${at} messageKey`, tr.keys.messageKey, step.messageKey);
        same(`${at} nonce`, tr.keys.nonce, step.nonce);
        same(`${at} nextChainKey`, tr.keys.nextChainKey, step.nextChainKey);
        same(`${at} headerBytes`, tr.headerBytes, step.headerBytes);
        same(`${at} paddedPlaintext`, tr.padded, step.paddedPlaintext);
        same(`${at} ciphertext`, tr.ciphertext, step.ciphertext);
        same(`${at} signedBytes`, tr.signedBytes, step.signedBytes);
        same(`${at} signature`, tr.signature, step.signature);
        same(`${at} message`, out.message, step.message);
        states.set(step.party, out.state);
        messages.set(step.name, out.message);
        break;
      }
      case 'decrypt': {
        const bytes = messages.get(step.name);
        if (!bytes) throw new Mismatch(`${at}: message never sent`);
        const out = decryptGroup(state, bytes);
        same(`${at} plaintext`, out.plaintext, step.plaintext);
        same(`${at} path`, out.trace.path, step.path);
        same(`${at} messageKey`, out.trace.keys.key, step.messageKey);
        same(`${at} nonce`, out.trace.keys.nonce, step.nonce);
        const stored = out.trace.stored.map((k) => ({
          sender: { accountKey: toHex(k.member.accountKey), deviceId: k.member.deviceId },
          generation: k.generation,
          iteration: k.iteration,
          messageKey: toHex(k.key),
          nonce: toHex(k.nonce),
        }));
        same(`${at} keysStored`, JSON.stringify(stored), JSON.stringify(step.keysStored));
        states.set(step.party, out.state);
        break;
      }
      default:
        throw new Mismatch(`unknown action ${step.action}`);
    }
    const snap = {};
    for (const [who, s] of states) snap[who] = encodeGroupRecord(s);
    snapshots.push(snap);
  }
  return snapshots;
}

export function checkGroups(f) {
  for (const g of f.groups('GroupChainKdf')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const k = groupStep(h(t.chainKey));
        same('messageKey', k.messageKey, t.messageKey);
        same('nonce', k.nonce, t.nonce);
        same('nextChainKey', k.nextChainKey, t.nextChainKey);
      });
    }
  }

  const scenarios = new Map();
  for (const g of f.groups('GroupScenario')) for (const t of g.tests) f.run(t, () => scenarios.set(t.name, runScenario(g, t)));
  const saved = (t) => {
    const s = scenarios.get(t.scenario)?.[t.afterStep]?.[t.party];
    if (!s) throw new Mismatch(`no ${t.party} state after step ${t.afterStep} of ${t.scenario}`);
    return s;
  };

  for (const g of f.groups('GroupMessageDelivery')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const state = loadGroupRecord(saved(t));
        refuses('group message', () => decryptGroup(state, h(t.message)), t.error);
        same('state after the refusal', encodeGroupRecord(state), saved(t));
      });
    }
  }

  for (const g of f.groups('DistributionDelivery')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const state = loadGroupRecord(saved(t));
        refuses('distribution', () => acceptDistribution(state, h(t.distribution), decodeCertificate(h(t.senderCertificate))), t.error);
        same('state after the refusal', encodeGroupRecord(state), saved(t));
      });
    }
  }

  for (const g of f.groups('GroupRecord')) {
    for (const t of g.tests) {
      f.run(t, () => {
        same('record', saved(t), t.record);
        let state = loadGroupRecord(h(t.record));
        same('record re-encodes', encodeGroupRecord(state), t.record);
        for (const d of t.decrypts) {
          const out = decryptGroup(state, h(d.message));
          same(`${d.name} plaintext`, out.plaintext, d.plaintext);
          state = out.state;
        }
      });
    }
  }

  for (const g of f.groups('InvalidGroupRecord')) {
    for (const t of g.tests) f.run(t, () => refuses('group record', () => loadGroupRecord(h(t.record)), t.error));
  }
}

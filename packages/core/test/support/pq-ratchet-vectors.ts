/**
 * Builds test-vectors/pq-ratchet.json (formats-v2 §5.3-§5.6, §14) from the
 * reference in src/pq/. The vectors test checks the checked-in file equals
 * this output byte for byte; rewrite it on purpose with
 * `node --import tsx packages/core/test/support/pq-ratchet-vectors.ts --write`.
 *
 * A conversation is a script of transitions of the two PQ states, exactly as
 * ratchet v2 calls them: send (with the random bytes it draws), receive (the
 * chunks, or null), and the two halves of a DH step (with the epoch and the
 * secret). After each transition the script gives SHA-256 of the stored
 * state, and the whole stored state when the phase changed.
 */
import { writeFileSync } from 'node:fs';
import { toHex } from '../../src/bytes.ts';
import { nobleBackend } from '../../src/crypto/noble.ts';
import { cryptoProvider } from '../../src/crypto/provider.ts';
import { isParleyError } from '../../src/errors.ts';
import { encodeCbor } from '../../src/codec/cbor.ts';
import { type PqChunks, decodePqChunks, encodePqChunks } from '../../src/pq/chunks.ts';
import { encodeChunks } from '../../src/pq/erasure.ts';
import { pqExchangeSecret } from '../../src/pq/kem.ts';
import { pqOnReceive, pqOnSend, pqSecretForStep } from '../../src/pq/ratchet.ts';
import { EK_CHUNKS, type PqRole, type PqState, encodePqState, initialPqState } from '../../src/pq/state.ts';
import { deterministicRandom } from '../../src/testing.ts';

export const PQ_RATCHET_FILE = new URL('../../../../test-vectors/pq-ratchet.json', import.meta.url);

const b = nobleBackend;
const none = cryptoProvider(b, () => {
  throw new Error('no randomness here');
});

// biome-ignore lint/suspicious/noExplicitAny: JSON test objects.
type Json = any;

interface Party {
  role: PqRole;
  state: PqState;
  random: (n: number) => Uint8Array;
  chain: { id: string; epoch: number } | null;
  peerChains: Map<string, number>;
  chains: number;
}

interface Wire {
  chain: string;
  epoch: number;
  pq: Uint8Array | null;
}

/** Records one conversation: the steps, and the final states. */
class Script {
  readonly steps: Json[] = [];
  readonly parties: Record<PqRole, Party>;
  constructor(seed: string) {
    const mk = (role: PqRole): Party => ({
      role,
      state: initialPqState(role),
      random: deterministicRandom(`${seed} ${role}`),
      chain: role === 'initiator' ? { id: 'initiator:0', epoch: 0 } : null,
      peerChains: new Map(),
      chains: 1,
    });
    this.parties = { initiator: mk('initiator'), responder: mk('responder') };
  }

  private record(p: Party, step: Json, next: PqState): void {
    const bytes = encodePqState(next);
    const phaseChanged = next.phase !== p.state.phase || next.exchange !== p.state.exchange;
    p.state = next;
    this.steps.push({ party: p.role, ...step, stateSha256: toHex(b.sha256(bytes)), ...(phaseChanged ? { state: toHex(bytes) } : {}) });
  }

  send(role: PqRole): Wire {
    const p = this.parties[role];
    if (!p.chain) throw new Error('no chain');
    const draws: string[] = [];
    const provider = cryptoProvider(b, (n) => {
      const r = p.random(n);
      draws.push(toHex(r));
      return r;
    });
    const { chunks, state } = pqOnSend(provider, p.state);
    const pq = chunks ? encodePqChunks(chunks) : null;
    this.record(p, { op: 'send', random: draws, chunks: pq ? toHex(pq) : null }, state);
    return { chain: p.chain.id, epoch: p.chain.epoch, pq };
  }

  receive(role: PqRole, m: Wire): void {
    const p = this.parties[role];
    if (!p.peerChains.has(m.chain)) {
      const r = pqSecretForStep(p.state, { side: 'receive', epoch: m.epoch });
      p.peerChains.set(m.chain, m.epoch);
      this.record(p, { op: 'stepReceive', epoch: m.epoch, secret: toHex(r.secret) }, r.state);
      const after = pqOnReceive(none, p.state, m.pq ? decodePqChunks(m.pq) : null);
      this.record(p, { op: 'receive', chunks: m.pq ? toHex(m.pq) : null }, after);
      const s = pqSecretForStep(p.state, { side: 'send' });
      p.chain = { id: `${role}:${p.chains++}`, epoch: s.epoch };
      this.record(p, { op: 'stepSend', epoch: s.epoch, secret: toHex(s.secret) }, s.state);
      return;
    }
    const after = pqOnReceive(none, p.state, m.pq ? decodePqChunks(m.pq) : null);
    this.record(p, { op: 'receive', chunks: m.pq ? toHex(m.pq) : null }, after);
  }
}

/**
 * The initiator sends 4 messages per message of the responder, so the
 * responder is the quiet side and bursts; every 7th message is lost and one
 * message arrives after the next. Ends when two exchanges are mixed by both.
 */
function conversation(): Json {
  const s = new Script('parley pq-ratchet conversation');
  let sent = 0;
  const deliver = (to: PqRole, m: Wire) => {
    sent++;
    if (sent % 7 === 0) return; // lost
    s.receive(to, m);
  };
  let late: Wire | null = null;
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 4; i++) {
      const m = s.send('initiator');
      if (round === 1 && i === 0) {
        late = m; // delivered after the next message of the same chain
        continue;
      }
      deliver('responder', m);
      if (late) {
        s.receive('responder', late);
        late = null;
      }
    }
    deliver('initiator', s.send('responder'));
    const { initiator, responder } = s.parties;
    if (initiator.state.exchange >= 3 && responder.state.exchange >= 3) break;
  }
  return {
    comment: 'initiator 4 : responder 1 (the responder bursts as the quiet side), every 7th message lost, one reordered',
    steps: s.steps,
    result: 'valid',
  };
}

/** A ping-pong without loss through exchange 1 only: the shortest full exchange at 2 chunks per message. */
function pingPong(): Json {
  const s = new Script('parley pq-ratchet ping-pong');
  for (let round = 0; round < 30; round++) {
    s.receive('responder', s.send('initiator'));
    s.receive('initiator', s.send('responder'));
    if (s.parties.responder.state.exchange >= 2) break;
  }
  return { comment: 'ping-pong, no loss, until exchange 1 is mixed by both', steps: s.steps, result: 'valid' };
}

function secrets(): Json[] {
  return [1, 2, 0xfffffffe].map((exchange) => {
    const r = deterministicRandom(`parley pq-ratchet secret ${exchange}`);
    const seed = r(64);
    const m = r(32);
    const { publicKey: ek } = b.mlkemKeygen(seed);
    const { ciphertext: ct, sharedSecret } = b.mlkemEncapsulate(ek, m.slice());
    const ss = sharedSecret.slice();
    const secret = pqExchangeSecret(b, exchange, b.sha256(ek), ct, sharedSecret);
    return {
      exchange,
      seed: toHex(seed),
      m: toHex(m),
      ek: toHex(ek),
      ct: toHex(ct),
      ss: toHex(ss),
      secret: toHex(secret),
      result: 'valid',
    };
  });
}

function codeOf(f: () => unknown): { error: string; reason?: string } {
  try {
    f();
  } catch (e) {
    if (isParleyError(e)) return { error: e.code, ...(typeof e.details.reason === 'string' ? { reason: e.details.reason } : {}) };
    throw e;
  }
  throw new Error('expected a refusal');
}

function chunkEncodings(): { valid: Json[]; invalid: Json[] } {
  const d = (i: number) => Uint8Array.from({ length: 64 }, (_, j) => (i * 64 + j) & 0xff);
  const valid = [
    { comment: 'one ek chunk, index 0', c: { exchange: 1, kind: 1, chunks: [{ index: 0, bytes: d(0) }] } },
    {
      comment: 'two ct chunks, indices 23 and 24 (one- and two-byte index)',
      c: { exchange: 2, kind: 2, chunks: [23, 24].map((index) => ({ index, bytes: d(index) })) },
    },
    {
      comment: 'eight chunks wrapping 251..254, 0..3; exchange 0xfffffffe',
      c: { exchange: 0xfffffffe, kind: 1, chunks: [251, 252, 253, 254, 0, 1, 2, 3].map((index) => ({ index, bytes: d(index) })) },
    },
  ].map(({ comment, c }) => ({
    comment,
    bytes: toHex(encodePqChunks(c as PqChunks)),
    exchange: c.exchange,
    kind: c.kind,
    indices: c.chunks.map((x) => x.index),
    result: 'valid',
  }));
  const chunk = (index: number, bytes = d(index)) => [index, bytes];
  const raw: [string, unknown][] = [
    ['not an array', 5],
    ['four fields', [1, 1, [chunk(0)], 0]],
    ['exchange 0', [0, 1, [chunk(0)]]],
    ['exchange 0xffffffff', [0xffffffff, 1, [chunk(0)]]],
    ['kind 3', [1, 3, [chunk(0)]]],
    ['kind 0', [1, 0, [chunk(0)]]],
    ['no chunks', [1, 1, []]],
    ['nine chunks', [1, 1, Array.from({ length: 9 }, (_, i) => chunk(i))]],
    ['repeated index', [1, 1, [chunk(4), chunk(4)]]],
    ['index 255', [1, 1, [chunk(255, d(0))]]],
    ['chunk of 63 bytes', [1, 1, [chunk(0, d(0).subarray(0, 63))]]],
    ['chunk of 65 bytes', [1, 1, [chunk(0, Uint8Array.from([...d(0), 0]))]]],
    ['chunk without data', [1, 1, [[0]]]],
    ['chunks not an array', [1, 1, d(0)]],
  ];
  const invalid: Json[] = raw.map(([comment, v]) => {
    const bytes = encodeCbor(v as never);
    return { comment, bytes: toHex(bytes), result: 'invalid', ...codeOf(() => decodePqChunks(bytes)) };
  });
  const ok = encodePqChunks({ exchange: 1, kind: 1, chunks: [{ index: 0, bytes: d(0) }] });
  const nonCanonical = Uint8Array.from([0x83, 0x18, 0x01, ...ok.subarray(2)]);
  invalid.push({
    comment: 'exchange as a two-byte integer (not canonical CBOR)',
    bytes: toHex(nonCanonical),
    result: 'invalid',
    ...codeOf(() => decodePqChunks(nonCanonical)),
  });
  return { valid, invalid };
}

/** States in each phase, taken from a run of the reference. */
function statesForInvalid(): Record<string, PqState> {
  const s = new Script('parley pq-ratchet invalid');
  const out: Record<string, PqState> = { initiatorFresh: s.parties.initiator.state };
  for (let i = 0; i < 3; i++) s.receive('responder', s.send('initiator'));
  out.collectingKey = s.parties.responder.state;
  out.sendingKey = s.parties.initiator.state;
  while (s.parties.responder.state.phase !== 'keyReceived') s.receive('responder', s.send('initiator'));
  out.keyReceived = s.parties.responder.state;
  s.receive('initiator', s.send('responder'));
  out.sendingCt = s.parties.responder.state;
  out.awaitingCt = s.parties.initiator.state;
  return out as Record<string, PqState>;
}

function receiveInvalid(st: Record<string, PqState>): Json[] {
  const d = new Uint8Array(64);
  const pc = (exchange: number, kind: 1 | 2, indices: number[]) =>
    encodePqChunks({ exchange, kind, chunks: indices.map((index) => ({ index, bytes: d })) });
  // A key whose first coefficient is q = 3329, chunked as its sender would; the
  // receiver holds its first 16 chunks and gets the last 3.
  const badEk = new Uint8Array(1184);
  badEk[0] = 0x01;
  badEk[1] = 0x0d;
  const all = encodeChunks(
    badEk,
    Array.from({ length: EK_CHUNKS }, (_, i) => i),
  );
  let holding = initialPqState('responder');
  for (let i = 0; i < 16; i += 8) {
    holding = pqOnReceive(none, holding, {
      exchange: 1,
      kind: 1,
      chunks: all.slice(i, i + 8).map((bytes, j) => ({ index: i + j, bytes })),
    });
  }
  const last = encodePqChunks({ exchange: 1, kind: 1, chunks: all.slice(16).map((bytes, j) => ({ index: 16 + j, bytes })) });
  const cases: [string, PqState, Uint8Array][] = [
    ['a future exchange', st.collectingKey as PqState, pc(2, 1, [0])],
    ['ct chunks to the ek receiver', st.collectingKey as PqState, pc(1, 2, [0])],
    ['ek chunks to the ek sender', st.sendingKey as PqState, pc(1, 1, [0])],
    ['ek chunks to X awaiting the ciphertext', st.awaitingCt as PqState, pc(1, 1, [0])],
    ['ct chunks before any key was sent', st.initiatorFresh as PqState, pc(1, 2, [0])],
    ['ct chunks to Y sending the ciphertext', st.sendingCt as PqState, pc(1, 2, [0])],
    ['a decoded key failing the FIPS 203 modulus check', holding, last],
  ];
  return cases.map(([comment, state, chunks]) => ({
    comment,
    state: toHex(encodePqState(state)),
    chunks: toHex(chunks),
    result: 'invalid',
    ...codeOf(() => pqOnReceive(none, state, decodePqChunks(chunks))),
  }));
}

function stepInvalid(st: Record<string, PqState>): Json[] {
  const cases: [string, PqState, number][] = [
    ['epoch 1 while the secret of exchange 1 is not held (Y collecting)', st.collectingKey as PqState, 1],
    ['epoch 1 at X (only Y accepts root epoch + 1)', st.awaitingCt as PqState, 1],
    ['epoch 2 (root epoch + 2) at Y holding the secret of exchange 1', st.sendingCt as PqState, 2],
    ['epoch 0xfffffffe', st.sendingCt as PqState, 0xfffffffe],
  ];
  return cases.map(([comment, state, epoch]) => ({
    comment,
    state: toHex(encodePqState(state)),
    epoch,
    result: 'invalid',
    ...codeOf(() => pqSecretForStep(state, { side: 'receive', epoch })),
  }));
}

function stateInvalid(st: Record<string, PqState>): Json[] {
  const zero64 = new Uint8Array(64);
  const enc = (v: unknown) => encodeCbor(v as never);
  const ekBad = new Uint8Array(1184).fill(0xff);
  const cases: [string, Uint8Array][] = [
    ['responder in a key-sender phase of exchange 1', enc([1, 0, 1, 1, null, null, 0])],
    ['initiator in a key-receiver phase of exchange 1', enc([0, 0, 4, 1, []])],
    ['phase 7', enc([0, 0, 7, 1, []])],
    ['phase 0', enc([0, 0, 0, 1])],
    ['exchange 0', enc([1, 0, 4, 0, []])],
    ['role 2', enc([2, 0, 4, 1, []])],
    ['19 held ek chunks (k)', enc([1, 0, 4, 1, Array.from({ length: 19 }, (_, i) => [i, zero64])])],
    ['17 held ct chunks (k)', enc([0, 0, 2, 1, zero64, new Uint8Array(32), Array.from({ length: 17 }, (_, i) => [i, zero64])])],
    [
      'a held chunk repeated',
      enc([
        1,
        0,
        4,
        1,
        [
          [3, zero64],
          [3, zero64],
        ],
      ]),
    ],
    ['seed without ek', enc([0, 0, 1, 1, zero64, null, 0])],
    ['stored ek failing the modulus check', enc([1, 0, 5, 1, ekBad])],
    ['next index 255', enc([1, 0, 6, 1, new Uint8Array(1088), new Uint8Array(32), 255])],
    ['unanswered 39 ek chunks (above 2k = 38)', enc([0, 0, 1, 1, null, null, 0, 39])],
    ['unanswered 35 ct chunks (above 2k = 34)', enc([1, 0, 6, 1, new Uint8Array(1088), new Uint8Array(32), 0, 35])],
    ['sendingKey with a field after unanswered', enc([0, 0, 1, 1, null, null, 0, 1, 0])],
    ['unanswered 0 written (stored by omission)', enc([0, 0, 1, 1, null, null, 0, 0])],
    ['trailing field', Uint8Array.from([...enc([1, 0, 4, 1, [], 0])])],
    ['trailing byte', Uint8Array.from([...encodePqState(st.collectingKey as PqState), 0])],
  ];
  return cases.map(([comment, bytes]) => ({ comment, state: toHex(bytes), result: 'invalid', error: 'BAD_RECORD' }));
}

export function buildPqRatchet(): string {
  const st = statesForInvalid();
  const chunks = chunkEncodings();
  let tcId = 1;
  const number = (tests: Json[]) => tests.map((t) => ({ tcId: tcId++, ...t }));
  const groups = [
    { type: 'PqExchangeSecret', description: 'ML-KEM-768 keygen(seed), encapsulate(ek, m), pqSecret_x (§5.5)', tests: number(secrets()) },
    { type: 'PqChunksEncoding', description: 'PqChunks bytes (§5.3)', tests: number(chunks.valid) },
    { type: 'PqChunksInvalid', description: 'refused PqChunks; reason is details.reason', tests: number(chunks.invalid) },
    {
      type: 'PqConversation',
      description: 'scripted transitions of both PQ states (§5.4-§5.6)',
      tests: number([pingPong(), conversation()]),
    },
    { type: 'PqReceiveInvalid', description: 'pqOnReceive refusals: state unchanged (§5.4)', tests: number(receiveInvalid(st)) },
    {
      type: 'PqStepInvalid',
      description: 'receiving half of a DH step with an epoch that is not allowed (§5.5)',
      tests: number(stepInvalid(st)),
    },
    { type: 'PqStateInvalid', description: 'stored PQ states refused (§5.6)', tests: number(stateInvalid(st)) },
  ];
  const file = {
    description: 'PQ ratchet (ratchet v2): exchange secret, PqChunks, state transitions and stored states.',
    spec: 'spec/design/formats-v2.md §5.3-§5.6',
    version: 1,
    numberOfTests: tcId - 1,
    notes: {
      state:
        'Stored PQ state = [role (0 initiator, 1 responder), receivedSinceSend, phase, exchange, ...]; phase 1 sendingKey [seed / null, ek / null, next, unanswered], 2 awaitingCt [seed, SHA-256(ek), chunks], 3 holdingSecret [secret], 4 collectingKey [chunks], 5 keyReceived [ek], 6 sendingCt [ct, secret, next, unanswered]; chunks = [[index, data]]. unanswered (chunks sent since the last received message, at most 2k) is written only when above 0 (absent: 0, as in states stored before it existed); a written 0 is refused.',
      conversation:
        "Each step names the party and the op: 'send' (pqOnSend; random = the draws in order, chunks = the PqChunks produced or null), 'receive' (pqOnReceive of chunks or null), 'stepReceive' / 'stepSend' (the receiving / sending half of a DH step: epoch and the secret mixed, empty when none). stateSha256 is SHA-256 of the stored state after the step; state is given in full when the phase or exchange changed. Both parties start from the initial state of their role.",
      sources:
        "Random bytes come from the deterministic source (packages/core/src/testing.ts) with seeds 'parley pq-ratchet conversation initiator' and so on; only the draws listed are used.",
    },
    testGroups: groups,
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv.includes('--write')) writeFileSync(PQ_RATCHET_FILE, buildPqRatchet());

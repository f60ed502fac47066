/**
 * Builds test-vectors/ratchet-v2.json (spec/13-ratchet-v2.md; formats-v2 §14):
 * KDF_RK2 with and without a PQ secret, the initial header keys, HeaderV2
 * parsing, and a scripted two-party conversation with every header key,
 * encrypted header, body, franking tag, epoch and random draw, deliveries out
 * of order and skipped keys across DH steps, and refusals each with its code
 * and `randomDraws: 0`.
 *
 * `packages/core/test/ratchet-v2-vectors.test.ts` rebuilds it with both
 * backends and compares byte for byte, then replays it through core; the
 * independent verifier (test-vectors/verifier/checks/ratchet-v2.mjs)
 * recomputes it from the spec. Write it with
 *   NODE_OPTIONS=--conditions=parley:source node --import tsx packages/core/test/support/ratchet-v2-vectors.ts --write
 */
import { writeFileSync } from 'node:fs';
import { concatBytes, toHex } from '../../src/bytes.ts';
import type { CryptoBackend } from '../../src/crypto/backend.ts';
import { deterministicRandom } from '../../src/crypto/deterministic-random.ts';
import { nobleBackend } from '../../src/crypto/noble.ts';
import { type CryptoProvider, cryptoProvider } from '../../src/crypto/provider.ts';
import { generateDhKeyPair } from '../../src/crypto/x25519.ts';
import { ParleyError } from '../../src/errors.ts';
import type { FrankingSender } from '../../src/franking/tag.ts';
import { messageKeys } from '../../src/ratchet/kdf.ts';
import { pad } from '../../src/ratchet/padding.ts';
import { decodeHeaderV2, encodeHeaderV2 } from '../../src/ratchet/v2/header.ts';
import { initialHeaderKeys, kdfRoot2 } from '../../src/ratchet/v2/kdf.ts';
import { type PqPort, defaultPqPort } from '../../src/ratchet/v2/pq-port.ts';
import {
  type RatchetV2,
  initiateV2,
  ratchetDecryptV2,
  ratchetEncryptV2,
  respondV2,
  trialOpenHeader,
} from '../../src/ratchet/v2/ratchet.ts';

export const RATCHET_V2_FILE = new URL('../../../../test-vectors/ratchet-v2.json', import.meta.url);

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
interface Test {
  tcId?: number;
  comment: string;
  result: 'valid' | 'invalid';
  error?: string;
  [k: string]: Json | undefined;
}
const hex = (b: Uint8Array) => toHex(b);
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A random source that hands out a labelled deterministic stream and logs every draw. */
class LoggedRandom {
  readonly #stream: (n: number) => Uint8Array;
  log: Uint8Array[] = [];
  constructor(seed: string) {
    this.#stream = deterministicRandom(`parley/test-vectors/ratchet-v2/${seed}`);
  }
  readonly source = (n: number) => {
    const out = this.#stream(n);
    this.log.push(out.slice());
    return out;
  };
  take(): Uint8Array[] {
    const out = this.log;
    this.log = [];
    return out;
  }
}

/** Logs the PQ secrets the port hands to each half of a DH step. */
function loggingPort(inner: PqPort, log: { send: Uint8Array | null; receive: Uint8Array | null }): PqPort {
  return {
    ...inner,
    takeSendSecret(state, rootEpoch) {
      const out = inner.takeSendSecret(state, rootEpoch);
      log.send = out ? out.secret.slice() : null;
      return out;
    },
    takeReceiveSecret(state, epoch) {
      const out = inner.takeReceiveSecret(state, epoch);
      log.receive = out ? out.secret.slice() : null;
      return out;
    },
  };
}

interface Party {
  name: 'alice' | 'bob';
  p: CryptoProvider;
  rng: LoggedRandom;
  r: RatchetV2;
  self: FrankingSender;
  peer: FrankingSender;
}

export function buildRatchetV2Vectors(backend: CryptoBackend, pq: PqPort = defaultPqPort): string {
  const b = backend;
  const fixed = cryptoProvider(b, deterministicRandom('parley/test-vectors/ratchet-v2/fixed'));

  // ---- KDF_RK2 and header keys ------------------------------------------------
  const kdfTests: Test[] = [];
  for (const [comment, pqLen] of [
    ['no PQ secret mixed (pq = empty)', 0],
    ['a PQ exchange secret mixed (pq = 32 bytes)', 32],
  ] as const) {
    const rootKey = fixed.random(32);
    const dhOutput = fixed.random(32);
    const pqSecret = fixed.random(pqLen);
    const out = kdfRoot2(b, rootKey, dhOutput, pqSecret);
    kdfTests.push({
      comment,
      result: 'valid',
      rootKey: hex(rootKey),
      dhOutput: hex(dhOutput),
      pq: hex(pqSecret),
      nextRootKey: hex(out.rootKey),
      chainKey: hex(out.chainKey),
      nextHeaderKey: hex(out.nextHeaderKey),
    });
  }
  const sk = fixed.random(32);
  const hk = initialHeaderKeys(b, sk);
  const headerKeyTests: Test[] = [
    { comment: 'HKa and NHKb from SK', result: 'valid', sharedSecret: hex(sk), hka: hex(hk.hka), nhkb: hex(hk.nhkb) },
  ];

  // ---- HeaderV2 parsing ---------------------------------------------------------
  const rk = generateDhKeyPair(fixed).publicKey;
  const headerTests: Test[] = [];
  const parse = (comment: string, bytes: Uint8Array) => {
    try {
      const h = decodeHeaderV2(bytes);
      headerTests.push({
        comment,
        result: 'valid',
        header: hex(bytes),
        ratchetKey: hex(h.ratchetKey),
        previousCounter: h.previousCounter,
        counter: h.counter,
        pqEpoch: h.pqEpoch,
      });
    } catch (e) {
      if (!(e instanceof ParleyError)) throw e;
      headerTests.push({ comment, result: 'invalid', header: hex(bytes), error: e.code });
    }
  };
  parse('counters and epoch in big-endian uint32', encodeHeaderV2({ ratchetKey: rk, previousCounter: 3, counter: 258, pqEpoch: 1 }));
  parse(
    'largest counters and epoch (0xfffffffe)',
    encodeHeaderV2({ ratchetKey: rk, previousCounter: 0xfffffffe, counter: 0xfffffffe, pqEpoch: 0xfffffffe }),
  );
  parse('counter 0xffffffff', encodeHeaderV2({ ratchetKey: rk, previousCounter: 0, counter: 0xffffffff, pqEpoch: 0 }));
  parse('previous counter 0xffffffff', encodeHeaderV2({ ratchetKey: rk, previousCounter: 0xffffffff, counter: 0, pqEpoch: 0 }));
  parse('PQ epoch 0xffffffff', encodeHeaderV2({ ratchetKey: rk, previousCounter: 0, counter: 0, pqEpoch: 0xffffffff }));
  parse(
    'ratchet key of small order (u = 0)',
    encodeHeaderV2({ ratchetKey: new Uint8Array(32), previousCounter: 0, counter: 0, pqEpoch: 0 }),
  );
  parse('non-canonical ratchet key (u = p)', encodeHeaderV2({ ratchetKey: p25519(), previousCounter: 0, counter: 0, pqEpoch: 0 }));
  parse('43 bytes', encodeHeaderV2({ ratchetKey: rk, previousCounter: 0, counter: 0, pqEpoch: 0 }).slice(0, 43));

  // ---- the conversation ------------------------------------------------------------
  const secrets = { send: null as Uint8Array | null, receive: null as Uint8Array | null };
  const port = loggingPort(pq, secrets);
  const options = { pq: port };
  const setup = cryptoProvider(b, deterministicRandom('parley/test-vectors/ratchet-v2/setup'));
  const sharedSecret = setup.random(32);
  const associatedData = setup.random(32);
  const spk = generateDhKeyPair(setup);
  const aliceRatchet = generateDhKeyPair(setup);
  const aliceId: FrankingSender = { accountKey: setup.random(32), deviceId: 1 };
  const bobId: FrankingSender = { accountKey: setup.random(32), deviceId: 7 };
  const party = (name: 'alice' | 'bob', r: (p: CryptoProvider) => RatchetV2, self: FrankingSender, peer: FrankingSender): Party => {
    const rng = new LoggedRandom(name);
    const p = cryptoProvider(b, rng.source);
    return { name, p, rng, r: r(p), self, peer };
  };
  const alice = party(
    'alice',
    (p) => initiateV2(p, { sharedSecret, associatedData, theirRatchetKey: spk.publicKey, ownRatchetKey: aliceRatchet }, options),
    aliceId,
    bobId,
  );
  const bob = party('bob', (p) => respondV2(p, { sharedSecret, associatedData, ownSignedPreKey: spk }, options), bobId, aliceId);

  interface Sent {
    from: Party;
    header: Uint8Array;
    ciphertext: Uint8Array;
    frankingTag: Uint8Array;
  }
  const sent = new Map<string, Sent>();
  const steps: Test[] = [];

  const send = (from: Party, name: string, text: string) => {
    const before = from.r.state;
    const chain = before.sendingChain as NonNullable<typeof before.sendingChain>;
    const out = ratchetEncryptV2(from.p, from.r, { plaintext: utf8(text), sender: from.self }, options);
    const draws = from.rng.take();
    const frankingKey = draws[0] as Uint8Array;
    const header = encodeHeaderV2({
      ratchetKey: before.sendingRatchetKey.publicKey,
      previousCounter: before.previousCounter,
      counter: chain.counter,
      pqEpoch: chain.epoch,
    });
    const mk = messageKeys(b, chain.chainKey);
    const body = bodyOf(b, mk, out.ciphertext, concatBytes(from.r.associatedData, header, out.frankingTag));
    from.r = { ...from.r, state: out.state };
    sent.set(name, { from, header: out.header, ciphertext: out.ciphertext, frankingTag: out.frankingTag });
    steps.push({
      comment: `${from.name} sends ${name}`,
      result: 'valid',
      action: 'send',
      from: from.name,
      name,
      plaintext: hex(utf8(text)),
      frankingKey: hex(frankingKey),
      pqDraws: draws.slice(1).map(hex),
      body: hex(body),
      headerKey: hex(before.sendingHeaderKey as Uint8Array),
      header: hex(header),
      messageKey: hex(mk.key),
      messageNonce: hex(mk.nonce),
      encryptedHeader: hex(out.header),
      ciphertext: hex(out.ciphertext),
      frankingTag: hex(out.frankingTag),
    });
  };

  const receive = (to: Party, name: string) => {
    const m = sent.get(name);
    if (!m) throw new Error(`no message ${name}`);
    secrets.send = null;
    secrets.receive = null;
    const opened = trialOpenHeader(b, to.r, m.header, m.ciphertext);
    if (!opened) throw new Error(`${name}: header does not open`);
    const out = ratchetDecryptV2(
      to.p,
      to.r,
      { header: m.header, ciphertext: m.ciphertext, frankingTag: m.frankingTag, sender: to.peer },
      options,
    );
    const draws = to.rng.take();
    to.r = { ...to.r, state: out.state };
    steps.push({
      comment: `${to.name} receives ${name}${opened.role.kind === 'next' ? ' (a DH ratchet step)' : opened.role.kind === 'skipped' ? ' (a stored skipped key)' : ''}`,
      result: 'valid',
      action: 'receive',
      to: to.name,
      name,
      opensWith: opened.role.kind,
      header: hex(opened.headerBytes),
      plaintext: hex(out.plaintext),
      newRatchetPrivateKey: draws.length ? hex(draws[0] as Uint8Array) : null,
      pqSecretReceive: secrets.receive ? hex(secrets.receive) : null,
      pqSecretSend: secrets.send ? hex(secrets.send) : null,
    });
    if (draws.length > 1) throw new Error('a receive drew more than the new ratchet key');
  };

  const refuse = (to: Party, comment: string, m: { header: Uint8Array; ciphertext: Uint8Array; frankingTag: Uint8Array }) => {
    let draws = 0;
    const p = cryptoProvider(b, (n) => {
      draws++;
      return to.p.random(n);
    });
    try {
      ratchetDecryptV2(p, to.r, { ...m, sender: to.peer }, options);
    } catch (e) {
      if (!(e instanceof ParleyError)) throw e;
      if (draws !== 0) throw new Error(`${comment}: a refusal drew randomness`);
      steps.push({
        comment,
        result: 'invalid',
        action: 'receive',
        to: to.name,
        encryptedHeader: hex(m.header),
        ciphertext: hex(m.ciphertext),
        frankingTag: hex(m.frankingTag),
        error: e.code,
        randomDraws: 0,
      });
      return;
    }
    throw new Error(`${comment}: accepted`);
  };
  const flip = (x: Uint8Array, i: number) => {
    const y = x.slice();
    y[i] = (y[i] as number) ^ 0x01;
    return y;
  };
  /** A message Alice's chain would send with another epoch (a sender that lies about its epoch). */
  const withEpoch = (from: Party, epoch: number, text: string) => {
    const s = from.r.state;
    const chain = s.sendingChain as NonNullable<typeof s.sendingChain>;
    const p = cryptoProvider(b, deterministicRandom(`parley/test-vectors/ratchet-v2/lie/${epoch}/${text}`));
    return ratchetEncryptV2(
      p,
      { ...from.r, state: { ...s, sendingChain: { ...chain, epoch } } },
      { plaintext: utf8(text), sender: from.self },
      { pq },
    );
  };

  send(alice, 'a1', 'hello Bob');
  receive(bob, 'a1');
  send(alice, 'a2', 'held back');
  send(alice, 'a3', 'overtakes a2');
  receive(bob, 'a3');
  send(bob, 'b1', 'hello Alice');
  receive(alice, 'b1');
  receive(bob, 'a2');
  refuse(bob, 'a2 again: its key was used (replay)', sent.get('a2') as Sent);
  send(alice, 'a4', 'new chain');
  send(alice, 'a5', 'same chain, late');
  receive(bob, 'a4');
  send(bob, 'b2', 'b2');
  send(bob, 'b3', 'b3 overtakes b2');
  receive(alice, 'b3');
  const a4 = sent.get('a4') as Sent;
  refuse(bob, 'bit flipped in the encrypted header', { ...a4, header: flip(a4.header, 5) });
  refuse(bob, 'bit flipped in the body tag (the header nonce)', { ...a4, ciphertext: flip(a4.ciphertext, a4.ciphertext.length - 10) });
  const a5 = sent.get('a5') as Sent;
  refuse(bob, 'bit flipped in the body', { ...a5, ciphertext: flip(a5.ciphertext, 0) });
  refuse(bob, 'bit flipped in the franking tag (part of the body AD)', { ...a5, frankingTag: flip(a5.frankingTag, 0) });
  // Alice's next message on her chain, with a tag committing to Carol: Bob recomputes it for Alice.
  const carol = { accountKey: new Uint8Array(32).fill(0xcc), deviceId: 1 };
  const carolRandom = cryptoProvider(b, deterministicRandom('parley/test-vectors/ratchet-v2/carol'));
  const lying = ratchetEncryptV2(carolRandom, alice.r, { plaintext: utf8('from Carol?'), sender: carol }, { pq });
  refuse(bob, "a franking tag committing to another sender than the session's peer", lying);
  // A message of another session with the same peers (its own SK): no header key opens it.
  const otherSk = setup.random(32);
  const other = initiateV2(setup, { sharedSecret: otherSk, associatedData, theirRatchetKey: spk.publicKey });
  const foreign = ratchetEncryptV2(setup, other, { plaintext: utf8('another session'), sender: aliceId });
  refuse(bob, 'header of another session', { header: foreign.header, ciphertext: foreign.ciphertext, frankingTag: foreign.frankingTag });
  const lie1 = withEpoch(alice, 1, 'epoch 1 on an epoch-0 chain');
  refuse(bob, "PQ epoch 1 on Bob's existing epoch-0 chain", {
    header: lie1.header,
    ciphertext: lie1.ciphertext,
    frankingTag: lie1.frankingTag,
  });
  receive(bob, 'a5');
  receive(alice, 'b2');
  send(alice, 'a6', 'answers b3');
  const lie2 = withEpoch(alice, 2, 'epoch 2 on a new chain');
  refuse(bob, 'PQ epoch 2 on a DH step (root epoch 0)', {
    header: lie2.header,
    ciphertext: lie2.ciphertext,
    frankingTag: lie2.frankingTag,
  });
  receive(bob, 'a6');
  // Ping-pong until the first PQ exchange has been mixed on both halves (formats-v2 §5.7: about 20 rounds).
  for (let i = 0; i < 22; i++) {
    send(bob, `b${4 + i}`, `ping ${i}`);
    receive(alice, `b${4 + i}`);
    send(alice, `a${7 + i}`, `pong ${i}`);
    receive(bob, `a${7 + i}`);
  }

  const file = {
    description:
      'Ratchet v2: KDF_RK2, initial header keys, HeaderV2, and a scripted conversation with encrypted headers, BodyV2, franking tags, skipped keys and refusals.',
    spec: 'spec/13-ratchet-v2.md',
    version: 1,
    protocolVersion: 2,
    notes: {
      conversation:
        'Steps run in order on one state per party. A send lists the random draws (frankingKey first, then any draws of the PQ ratchet), the plain header, the header key, the message keys, the unpadded body and the outputs; a receive lists the ratchet key drawn at a DH step and the PQ secrets mixed at its two halves (null: none). Invalid steps must be refused with their error, draw nothing, and leave the state unchanged.',
      pq: `PQ ratchet driven while generating: ${pq.name}. Its own vectors are pq-ratchet.json; here its outputs are given (body bytes, mixed secrets).`,
    },
    testGroups: [
      { type: 'KdfRoot2', spec: 'spec/13-ratchet-v2.md §2', description: 'KDF_RK2(RK, dh, pq)', tests: kdfTests },
      { type: 'HeaderKeys', spec: 'spec/13-ratchet-v2.md §2', description: '(HKa, NHKb) from SK', tests: headerKeyTests },
      {
        type: 'HeaderV2',
        spec: 'spec/13-ratchet-v2.md §3',
        description: 'opened 44-byte headers: parsed fields or the refusal',
        tests: headerTests,
      },
      {
        type: 'ConversationV2',
        spec: 'spec/13-ratchet-v2.md §3-§6',
        description: 'Alice initiates, Bob responds; every step in order',
        sharedSecret: hex(sharedSecret),
        associatedData: hex(associatedData),
        responderSignedPreKeyPrivate: hex(spk.privateKey),
        initiatorRatchetPrivateKey: hex(aliceRatchet.privateKey),
        alice: { accountKey: hex(aliceId.accountKey), deviceId: aliceId.deviceId },
        bob: { accountKey: hex(bobId.accountKey), deviceId: bobId.deviceId },
        tests: steps,
      },
    ],
  };
  let id = 0;
  for (const g of file.testGroups) for (const t of g.tests as Test[]) t.tcId = ++id;
  return `${JSON.stringify({ ...file, numberOfTests: id }, null, 2)}\n`;
}

/** The body a ciphertext carries, unpadded (for the vector; decryption itself is checked on the receive step). */
function bodyOf(b: CryptoBackend, mk: { key: Uint8Array; nonce: Uint8Array }, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array {
  const padded = b.aeadOpen(mk.key, mk.nonce, ciphertext, ad);
  if (!padded) throw new Error('own message does not open');
  let i = padded.length - 1;
  while (padded[i] === 0) i--;
  const body = padded.slice(0, i);
  if (toHex(pad(body)) !== toHex(padded)) throw new Error('padding');
  return body;
}

/** p = 2^255 - 19, little-endian: a non-canonical X25519 encoding. */
function p25519(): Uint8Array {
  const out = new Uint8Array(32).fill(0xff);
  out[0] = 0xed;
  out[31] = 0x7f;
  return out;
}

if (process.argv.includes('--write')) {
  writeFileSync(RATCHET_V2_FILE, buildRatchetV2Vectors(nobleBackend));
  console.log(`wrote ${RATCHET_V2_FILE.pathname}`);
}

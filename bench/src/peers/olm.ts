/**
 * Peer: libolm 3.2.16 (Matrix's Olm and Megolm) as a WebAssembly build,
 * @towns-protocol/olm. Issue 5 (peers: olm setup, same-direction, ping-pong,
 * Megolm encrypt/decrypt).
 *
 * Not like for like: Olm's handshake is 3DH over Curve25519 with no
 * post-quantum KEM and no signed prekey check, and it does not pad
 * plaintexts. Its API takes and returns strings (base64 ciphertexts), so
 * base64 coding is part of its per-message cost, as it is for its users.
 * Every Olm object lives in wasm memory and is freed here explicitly.
 */
import OlmInit from '@towns-protocol/olm';
import type { Account, OlmImpl, Session } from '@towns-protocol/olm';
import type { Entry } from '../runner.ts';
import type { PeerSet } from './types.ts';

const SUBJECT = { section: 'peers', subject: 'olm' } as const;

/** ASCII text of `length` bytes: Olm encrypts strings. */
function text(length: number): string {
  return 'x'.repeat(length);
}

function curveKey(account: Account): string {
  return (JSON.parse(account.identity_keys()) as { curve25519: string }).curve25519;
}

/** Generates `n` one-time keys on `account` and returns their public halves. */
function oneTimeKeys(account: Account, n: number): string[] {
  account.generate_one_time_keys(n);
  const keys = Object.values((JSON.parse(account.one_time_keys()) as { curve25519: Record<string, string> }).curve25519);
  account.mark_keys_as_published();
  return keys;
}

function expectText(plaintext: string, length: number): void {
  if (plaintext.length !== length) throw new Error(`olm round trip returned ${plaintext.length} chars, expected ${length}`);
}

/** An outbound session (Alice) and the inbound one it created (Bob), past the pre-key stage. */
function established(Olm: OlmImpl, alice: Account, bob: Account): { a: Session; b: Session } {
  const a = new Olm.Session();
  a.create_outbound(alice, curveKey(bob), oneTimeKeys(bob, 1)[0] as string);
  const first = a.encrypt('hello');
  const b = new Olm.Session();
  b.create_inbound(bob, first.body);
  bob.remove_one_time_keys(b);
  b.decrypt(first.type, first.body);
  const reply = b.encrypt('hi');
  a.decrypt(reply.type, reply.body);
  return { a, b };
}

/** The olm entries (setup, same-direction, ping-pong, Megolm); `dispose` frees every wasm object. */
export async function olmEntries(): Promise<PeerSet> {
  const Olm = await OlmInit.initAsync();
  const owned: { free(): void }[] = [];
  const own = <T extends { free(): void }>(o: T): T => {
    owned.push(o);
    return o;
  };
  const alice = own(new Olm.Account());
  alice.create();
  const bob = own(new Olm.Account());
  bob.create();
  const small = text(100);
  // Olm accounts hold at most this many unpublished one-time keys.
  const maxKeys = Math.min(50, bob.max_number_of_one_time_keys() / 2);
  const entries: Entry[] = [];

  entries.push({
    meta: {
      ...SUBJECT,
      op: 'setup',
      label: 'setup: outbound 3DH, 1st msg, inbound + decrypt',
      note: 'no post-quantum KEM; no signature check on the one-time key',
    },
    task: {
      prepare: (n: number) => ({ keys: oneTimeKeys(bob, n), bobKey: curveKey(bob), sessions: [] as Session[] }),
      run(ctx: { keys: string[]; bobKey: string; sessions: Session[] }, i: number) {
        const outbound = new Olm.Session();
        outbound.create_outbound(alice, ctx.bobKey, ctx.keys[i] as string);
        const first = outbound.encrypt(small);
        const inbound = new Olm.Session();
        inbound.create_inbound(bob, first.body);
        bob.remove_one_time_keys(inbound);
        expectText(inbound.decrypt(first.type, first.body), 100);
        ctx.sessions.push(outbound, inbound);
      },
      cleanup(ctx: { sessions: Session[] }) {
        for (const s of ctx.sessions) s.free();
      },
    },
    overrides: { maxIterations: maxKeys },
  });

  for (const [op, length, label] of [
    ['same-direction-100', 100, 'same-direction encrypt+decrypt, 100 B'],
    ['same-direction-1024', 1024, 'same-direction encrypt+decrypt, 1 KiB'],
  ] as const) {
    const { a, b } = established(Olm, alice, bob);
    own(a);
    own(b);
    const body = text(length);
    const probe = a.encrypt(body);
    b.decrypt(probe.type, probe.body);
    entries.push({
      meta: { ...SUBJECT, op, label, note: `${probe.body.length} B base64 on the wire; no padding` },
      task: {
        run() {
          const m = a.encrypt(body);
          expectText(b.decrypt(m.type, m.body), length);
        },
      },
    });
  }

  {
    const { a, b } = established(Olm, alice, bob);
    own(a);
    own(b);
    let turn = 0;
    entries.push({
      meta: { ...SUBJECT, op: 'ping-pong', label: 'ping-pong, 100 B (DH ratchet step per message)' },
      task: {
        run() {
          // A turn counter, not the sample index: samples may hold an odd number of iterations.
          const [from, to] = turn++ % 2 === 0 ? [a, b] : [b, a];
          const m = from.encrypt(small);
          expectText(to.decrypt(m.type, m.body), 100);
        },
      },
    });
  }

  {
    const outbound = own(new Olm.OutboundGroupSession());
    outbound.create();
    const inbound = own(new Olm.InboundGroupSession());
    inbound.create(outbound.session_key());
    entries.push({
      meta: {
        ...SUBJECT,
        op: 'group-message',
        label: 'Megolm encrypt + one member decrypt, 100 B',
        note: 'any group size: one ciphertext per message; Ed25519-signed',
      },
      task: {
        run() {
          expectText(inbound.decrypt(outbound.encrypt(small)).plaintext, 100);
        },
      },
    });
  }

  return {
    entries,
    dispose() {
      for (const o of owned.reverse()) o.free();
    },
  };
}

// test-vectors/pq-ratchet.json through the PQ ratchet's API, with each
// backend: the file equals the generator's output; every scripted transition
// reproduces its chunks, secrets and stored state byte for byte, drawing
// exactly the listed random bytes; every invalid case is refused with its
// code, leaving the state unchanged.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { cryptoProvider } from '../src/crypto/provider.ts';
import { ParleyError } from '../src/errors.ts';
import { decodePqChunks, encodePqChunks } from '../src/pq/chunks.ts';
import { pqExchangeSecret } from '../src/pq/kem.ts';
import { pqOnReceive, pqOnSend, pqSecretForStep } from '../src/pq/ratchet.ts';
import { type PqRole, type PqState, decodePqState, encodePqState, initialPqState } from '../src/pq/state.ts';
import { noRandomProvider } from './support/pq-peers.ts';
import { PQ_RATCHET_FILE, buildPqRatchet } from './support/pq-ratchet-vectors.ts';

const TEXT = readFileSync(PQ_RATCHET_FILE, 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field.
const VECTORS: any = JSON.parse(TEXT);
// biome-ignore lint/suspicious/noExplicitAny: as above.
const group = (type: string): any[] => VECTORS.testGroups.find((g: { type: string }) => g.type === type).tests;

function refusal(f: () => unknown): { error: string; reason?: unknown } {
  try {
    f();
  } catch (e) {
    if (e instanceof ParleyError) return { error: e.code, ...(e.details.reason === undefined ? {} : { reason: e.details.reason }) };
    throw e;
  }
  return { error: 'no error' };
}

it('test-vectors/pq-ratchet.json equals the generator output byte for byte', () => {
  expect(TEXT === buildPqRatchet()).toBe(true);
});

for (const backend of [nobleBackend, nodeBackend] as CryptoBackend[]) {
  describe(`pq-ratchet.json with the ${backend.name} backend`, () => {
    const none = noRandomProvider(backend);

    for (const t of group('PqExchangeSecret')) {
      it(`${t.tcId}: pqSecret for exchange ${t.exchange}`, () => {
        const { publicKey } = backend.mlkemKeygen(fromHex(t.seed));
        expect(toHex(publicKey)).toBe(t.ek);
        const enc = backend.mlkemEncapsulate(publicKey, fromHex(t.m));
        expect(toHex(enc.ciphertext)).toBe(t.ct);
        expect(toHex(enc.sharedSecret)).toBe(t.ss);
        expect(toHex(pqExchangeSecret(backend, t.exchange, backend.sha256(publicKey), enc.ciphertext, enc.sharedSecret))).toBe(t.secret);
      });
    }

    it('PqChunks encodings decode to their fields and re-encode', () => {
      for (const t of group('PqChunksEncoding')) {
        const c = decodePqChunks(fromHex(t.bytes));
        expect([c.exchange, c.kind, c.chunks.map((x) => x.index)]).toEqual([t.exchange, t.kind, t.indices]);
        expect(toHex(encodePqChunks(c))).toBe(t.bytes);
      }
    });

    it('PqChunks refusals carry the vector code and reason', () => {
      for (const t of group('PqChunksInvalid')) {
        expect(
          refusal(() => decodePqChunks(fromHex(t.bytes))),
          t.comment,
        ).toEqual(t.reason === undefined ? { error: t.error } : { error: t.error, reason: t.reason });
      }
    });

    for (const t of group('PqConversation')) {
      it(`${t.tcId}: ${t.comment}`, () => {
        const states: Record<PqRole, PqState> = { initiator: initialPqState('initiator'), responder: initialPqState('responder') };
        for (const [n, step] of t.steps.entries()) {
          const at = `step ${n} (${step.party} ${step.op})`;
          const s = states[step.party as PqRole];
          let next: PqState;
          if (step.op === 'send') {
            const draws = [...step.random];
            const scripted = cryptoProvider(backend, (len) => {
              const r = draws.shift();
              if (r === undefined || r.length !== 2 * len) throw new Error(`${at}: unexpected draw of ${len} bytes`);
              return fromHex(r);
            });
            const out = pqOnSend(scripted, s);
            expect(draws, at).toEqual([]);
            expect(out.chunks ? toHex(encodePqChunks(out.chunks)) : null, at).toBe(step.chunks);
            next = out.state;
          } else if (step.op === 'receive') {
            next = pqOnReceive(none, s, step.chunks === null ? null : decodePqChunks(fromHex(step.chunks)));
          } else {
            const out = pqSecretForStep(s, step.op === 'stepSend' ? { side: 'send' } : { side: 'receive', epoch: step.epoch });
            expect([toHex(out.secret), out.epoch], at).toEqual([step.secret, step.epoch]);
            next = out.state;
          }
          const bytes = encodePqState(next);
          expect(toHex(backend.sha256(bytes)), at).toBe(step.stateSha256);
          if (step.state !== undefined) expect(toHex(bytes), at).toBe(step.state);
          states[step.party as PqRole] = next;
        }
        // Both sides mixed the same secrets, in the same order.
        const mixed = (role: PqRole) =>
          t.steps
            .filter((s: { party: string; op: string; secret?: string }) => s.party === role && s.secret)
            .map((s: { secret: string }) => s.secret);
        expect(mixed('initiator').length).toBeGreaterThanOrEqual(1);
        expect(mixed('initiator')).toEqual(mixed('responder'));
      });
    }

    it('PqReceiveInvalid: refused with the code and reason, state unchanged', () => {
      for (const t of group('PqReceiveInvalid')) {
        const state = decodePqState(fromHex(t.state));
        expect(
          refusal(() => pqOnReceive(none, state, decodePqChunks(fromHex(t.chunks)))),
          t.comment,
        ).toEqual({
          error: t.error,
          reason: t.reason,
        });
        expect(toHex(encodePqState(state))).toBe(t.state);
      }
    });

    it('PqStepInvalid: PQ_EPOCH_INVALID, state unchanged', () => {
      for (const t of group('PqStepInvalid')) {
        const state = decodePqState(fromHex(t.state));
        expect(refusal(() => pqSecretForStep(state, { side: 'receive', epoch: t.epoch })).error, t.comment).toBe(t.error);
        expect(toHex(encodePqState(state))).toBe(t.state);
      }
    });

    it('PqStateInvalid: BAD_RECORD', () => {
      for (const t of group('PqStateInvalid')) {
        expect(refusal(() => decodePqState(fromHex(t.state))).error, t.comment).toBe(t.error);
      }
    });
  });
}

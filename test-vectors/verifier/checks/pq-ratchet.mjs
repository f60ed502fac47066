/** pq-ratchet.json against spec/design/formats-v2.md §5.3-§5.6, on the verifier's own PQ ratchet. */
import { Mismatch, refuses, same } from '../lib/check.mjs';
import { ProtocolError } from '../lib/errors.mjs';
import { fromHex as h, toHex } from '../lib/hex.mjs';
import {
  decodeChunks,
  decodeState,
  encodeChunks,
  encodeState,
  exchangeSecret,
  initialState,
  receive,
  send,
  step,
} from '../lib/pq-ratchet.mjs';
import { mlkemEncapsulate, mlkemKeygen, sha256 } from '../lib/primitives.mjs';

/** `fn` must refuse with `code` and, when the vector names one, `reason`. */
function refusesWith(what, fn, code, reason) {
  refuses(what, fn, code);
  if (reason === undefined) return;
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError && e.reason !== reason) throw new Mismatch(`${what}: reason ${e.reason}, vector expects ${reason}`);
  }
}

export function checkPqRatchet(f) {
  for (const g of f.groups('PqExchangeSecret')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const { publicKey } = mlkemKeygen(h(t.seed));
        same('ek', publicKey, t.ek);
        const { ciphertext, sharedSecret } = mlkemEncapsulate(publicKey, h(t.m));
        same('ct', ciphertext, t.ct);
        same('ss', sharedSecret, t.ss);
        same('secret', exchangeSecret(t.exchange, sha256(publicKey), ciphertext, sharedSecret), t.secret);
      });
    }
  }
  for (const g of f.groups('PqChunksEncoding')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const c = decodeChunks(h(t.bytes));
        same('fields', [c.exchange, c.kind, c.chunks.map((x) => x.index)], [t.exchange, t.kind, t.indices]);
        same('re-encoding', encodeChunks(c), t.bytes);
      });
    }
  }
  for (const g of f.groups('PqChunksInvalid')) {
    for (const t of g.tests) f.run(t, () => refusesWith('decode', () => decodeChunks(h(t.bytes)), t.error, t.reason));
  }
  for (const g of f.groups('PqConversation')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const states = { initiator: initialState(0), responder: initialState(1) };
        t.steps.forEach((s, n) => {
          const at = `step ${n} (${s.party} ${s.op})`;
          const before = states[s.party];
          let next;
          if (s.op === 'send') {
            const draws = [...s.random];
            const out = send(before, (len) => {
              const r = draws.shift();
              if (r === undefined || r.length !== 2 * len) throw new Mismatch(`${at}: a draw of ${len} bytes the vector does not list`);
              return h(r);
            });
            same(`${at} draws used`, draws.length, 0);
            same(`${at} chunks`, out.chunks === null ? null : toHex(out.chunks), s.chunks);
            next = out.state;
          } else if (s.op === 'receive') {
            next = receive(before, s.chunks === null ? null : decodeChunks(h(s.chunks)));
          } else {
            const out = step(before, s.op === 'stepSend' ? 'send' : 'receive', s.epoch);
            same(`${at} secret`, out.secret, s.secret);
            same(`${at} epoch`, out.epoch, s.epoch);
            next = out.state;
          }
          const bytes = encodeState(next);
          same(`${at} state hash`, sha256(bytes), s.stateSha256);
          if (s.state !== undefined) {
            same(`${at} state`, bytes, s.state);
            same(`${at} state decodes`, encodeState(decodeState(bytes)), s.state);
          }
          states[s.party] = next;
        });
      });
    }
  }
  for (const g of f.groups('PqReceiveInvalid')) {
    for (const t of g.tests) {
      f.run(t, () => refusesWith('receive', () => receive(decodeState(h(t.state)), decodeChunks(h(t.chunks))), t.error, t.reason));
    }
  }
  for (const g of f.groups('PqStepInvalid')) {
    for (const t of g.tests) f.run(t, () => refuses('step', () => step(decodeState(h(t.state)), 'receive', t.epoch), t.error));
  }
  for (const g of f.groups('PqStateInvalid')) {
    for (const t of g.tests) f.run(t, () => refuses('load', () => decodeState(h(t.state)), t.error));
  }
}

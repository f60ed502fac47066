// A toy PQ port for testing the ratchet's side of the PQ ratchet (spec/13-ratchet-v2.md §6) without
// ML-KEM: Y "encapsulates" by drawing a 32-byte secret and sending it inside its (encrypted) body; X
// holds it once received. It follows the port contract exactly (roles alternate, X mixes at its next
// sending half, Y at the matching receiving half, one exchange at a time) so the ratchet's mixing,
// epochs and stored state are exercised. Not a KEM: the secret travels under the ratchet's own keys.
import type { CborValue } from '../../src/index.ts';
import { fail } from '../../src/errors.ts';
import type { PqPort } from '../../src/ratchet/v2/pq-port.ts';

// State: [initiator: bool, exchange x, phase, secret / null]
//   phase 0 = X waiting for Y's secret, 1 = X holds it (mix at next send), 2 = Y must send it, 3 = Y sent it (mix on receive)
type Toy = [boolean, number, number, Uint8Array | null];
const read = (v: unknown): Toy => v as Toy;
const isX = (s: Toy) => (s[1] % 2 === 1) === s[0];

export const toyPqPort: PqPort = {
  name: 'toy',
  initial: (initiator) => [initiator, 1, initiator ? 0 : 2, null] as CborValue,
  onSend(p, state) {
    const s = read(state);
    if (isX(s)) return { state, chunks: null };
    // Y repeats its secret on every message until X's epoch shows it arrived (chunks are lost too).
    if (s[2] === 3) return { state, chunks: [s[1], s[3] as Uint8Array] };
    const secret = p.random(32);
    return { state: [s[0], s[1], 3, secret] as CborValue, chunks: [s[1], secret] as CborValue };
  },
  onReceive(_b, state, chunks) {
    const s = read(state);
    if (chunks === null) return state;
    const [x, secret] = chunks as [number, Uint8Array];
    if (x < s[1]) return state;
    if (x > s[1] || !isX(s) || !(secret instanceof Uint8Array)) fail('PQ_CHUNK_INVALID', 'toy: unexpected chunk');
    if (s[2] !== 0) return state;
    return [s[0], s[1], 1, secret] as CborValue;
  },
  takeSendSecret(state, rootEpoch) {
    const s = read(state);
    if (!isX(s) || s[2] !== 1 || rootEpoch + 1 !== s[1]) return null;
    // X has mixed exchange x; it becomes Y of exchange x + 1.
    return { state: [s[0], s[1] + 1, 2, null] as CborValue, secret: s[3] as Uint8Array };
  },
  takeReceiveSecret(state, epoch) {
    const s = read(state);
    if (isX(s) || s[2] !== 3 || epoch !== s[1]) return null;
    // Y has mixed exchange x; it becomes X of exchange x + 1.
    return { state: [s[0], s[1] + 1, 0, null] as CborValue, secret: s[3] as Uint8Array };
  },
  checkStored: (v) => v as CborValue,
  toStored: (s) => s as CborValue,
};

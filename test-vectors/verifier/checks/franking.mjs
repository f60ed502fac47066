/** franking.json against spec/design/formats-v2.md §6.1: HMAC-SHA256 over the labelled CBOR, recomputed here. */
import { Mismatch, same } from '../lib/check.mjs';
import { encode } from '../lib/cbor.mjs';
import { equal, fromHex as h } from '../lib/hex.mjs';
import { hmac } from '../lib/primitives.mjs';

const LABEL = 'Parley v2 franking tag';

const tagOf = (t) => hmac(h(t.frankingKey), encode([LABEL, h(t.senderAccount), t.senderDeviceId, h(t.plaintext)]));

export function checkFranking(f) {
  for (const g of f.groups('FrankingTag')) {
    for (const t of g.tests) f.run(t, () => same('tag', tagOf(t), t.tag));
  }
  for (const g of f.groups('FrankingTagMismatch')) {
    for (const t of g.tests) {
      f.run(t, () => {
        if (equal(tagOf(t), h(t.tag))) throw new Mismatch('the recomputed tag equals the given one: the vector expects a mismatch');
        same('error', t.error, 'FRANKING_TAG_MISMATCH');
      });
    }
  }
}

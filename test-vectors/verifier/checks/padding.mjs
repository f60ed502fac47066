/** padding.json against spec/04-double-ratchet.md §5. */
import { refuses, same } from '../lib/check.mjs';
import { fromHex as h } from '../lib/hex.mjs';
import { pad, paddedLength, unpad } from '../lib/ratchet.mjs';

export function checkPadding(f) {
  for (const g of f.groups('Pad')) {
    for (const t of g.tests) {
      f.run(t, () => {
        same('plaintextLength', h(t.plaintext).length, t.plaintextLength);
        const padded = pad(h(t.plaintext));
        same('padded', padded, t.padded);
        same('paddedLength', padded.length, t.paddedLength);
        same('unpadded', unpad(padded), t.plaintext);
      });
    }
  }
  for (const g of f.groups('PaddedLength')) {
    for (const t of g.tests) f.run(t, () => same('paddedLength', paddedLength(t.plaintextLength + 1), t.paddedLength));
  }
  for (const g of f.groups('Unpad')) {
    for (const t of g.tests) {
      f.run(t, () => {
        if (t.result === 'invalid') refuses('unpad', () => unpad(h(t.padded)), t.error);
        else same('plaintext', unpad(h(t.padded)), t.plaintext);
      });
    }
  }
}

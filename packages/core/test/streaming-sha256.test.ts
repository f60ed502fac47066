// The incremental SHA-256 (crypto/streaming-sha256.ts) agrees with both
// backends' one-shot sha256 however the input is cut, and with FIPS 180-2.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleBackend, streamingSha256, toHex, utf8 } from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';

function hashInPieces(data: Uint8Array, cuts: number[]): Uint8Array {
  const h = streamingSha256();
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (data.length + 1))].sort((a, b) => a - b)) {
    h.update(data.subarray(at, Math.max(at, cut)));
    at = Math.max(at, cut);
  }
  h.update(data.subarray(at));
  return h.digest();
}

describe('streamingSha256', () => {
  it('matches the FIPS 180-2 example and the empty input', () => {
    const abc = streamingSha256();
    abc.update(utf8('a'));
    abc.update(utf8('bc'));
    expect(toHex(abc.digest())).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(toHex(streamingSha256().digest())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('equals both backends one-shot sha256 for any input cut anywhere', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1000 }), fc.array(fc.nat(), { maxLength: 8 }), (data, cuts) => {
        const streamed = toHex(hashInPieces(data, cuts));
        expect(streamed).toBe(toHex(nobleBackend.sha256(data)));
        expect(streamed).toBe(toHex(nodeBackend.sha256(data)));
      }),
      { numRuns: 200 },
    );
  });
});

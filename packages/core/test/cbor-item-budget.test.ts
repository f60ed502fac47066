// readCbor's item budget (maxItems, spec/01-conventions.md §2.2 and spec/09-relay.md §5.4): the relay bounds
// what decoding one of its frames can build by what a legitimate frame holds. The budget counts every item,
// at every depth, the outer one included; an input is refused with OVERSIZED at the first item past it,
// before that item is read: a tail past the bound is never looked at, whatever it holds.
import { type CborValue, ParleyError, encodeCbor, readCbor } from '@parley/core';
import { describe, expect, it } from 'vitest';

/** The number of items of a value as the budget counts them (every array, byte/text string, integer, simple value). */
function itemsOf(v: CborValue): number {
  return Array.isArray(v) ? 1 + v.reduce((n: number, x) => n + itemsOf(x), 0) : 1;
}

function refusal(run: () => unknown): ParleyError {
  try {
    run();
  } catch (error) {
    if (error instanceof ParleyError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

const VALUES: CborValue[] = [
  0,
  'send',
  new Uint8Array(0),
  [],
  ['send', 1, null, [[new Uint8Array(32), 1, 'id', new Uint8Array(100), null]]],
  [[[[]]], [true, false], 'x'.repeat(30), new Uint8Array(70), 0xffffffff],
];

describe('readCbor maxItems', () => {
  it('an input of exactly maxItems items is read as without a budget; one item fewer is refused OVERSIZED with the limit', () => {
    for (const v of VALUES) {
      const bytes = encodeCbor(v);
      const n = itemsOf(v);
      expect(readCbor(bytes, 'value', bytes.length, { maxItems: n })).toEqual(readCbor(bytes, 'value', bytes.length));
      const e = refusal(() => readCbor(bytes, 'value', bytes.length, { maxItems: n - 1 }));
      expect(e.code).toBe('OVERSIZED');
      expect(e.details).toMatchObject({ limit: n - 1 });
    }
  });

  it('the reader stops at the bound: garbage past it is not read (refused for the bound, not for the garbage)', () => {
    // 10 empty byte strings, then bytes no Parley reader accepts (a break, a reserved head, an indefinite string, a map).
    const garbage = [0xff, 0x1c, 0x5f, 0xa0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    const bytes = Uint8Array.of(0x94, ...new Array(10).fill(0x40), ...garbage); // an array claiming 20 items
    // Without a budget (or with room for the whole claim) the garbage is what refuses it.
    expect(refusal(() => readCbor(bytes, 'frame', 1024)).code).toBe('MALFORMED');
    expect(refusal(() => readCbor(bytes, 'frame', 1024, { maxItems: 21 })).code).toBe('MALFORMED');
    // A claim past the budget is refused on the array's head, before any element is built.
    const e = refusal(() => readCbor(bytes, 'frame', 1024, { maxItems: 11 }));
    expect(e.code).toBe('OVERSIZED');
    expect(e.message).toContain('more than 11 CBOR items');
    // Items that each claim little but add up: refused at the first item past the budget, before the garbage.
    const nested = Uint8Array.of(0x83, 0x83, 0x40, 0x40, 0x40, 0x83, 0x40, 0x40, 0x40, 0x83, ...garbage);
    expect(refusal(() => readCbor(nested, 'frame', 1024)).code).toBe('MALFORMED');
    expect(refusal(() => readCbor(nested, 'frame', 1024, { maxItems: 9 })).code).toBe('OVERSIZED');
    expect(refusal(() => readCbor(nested, 'frame', 1024, { maxItems: 13 })).code).toBe('MALFORMED');
  });

  it('nested items count: deep empty arrays are refused at the bound as flat ones are', () => {
    const deep: CborValue = [[[[[[[[]]]]]]]]; // 8 arrays
    const flat: CborValue = new Array(7).fill(new Uint8Array(0)); // 1 + 7 items
    for (const v of [deep, flat]) {
      const bytes = encodeCbor(v);
      expect(itemsOf(v)).toBe(8);
      expect(readCbor(bytes, 'v', 64, { maxItems: 8 })).toEqual(v);
      expect(refusal(() => readCbor(bytes, 'v', 64, { maxItems: 7 })).code).toBe('OVERSIZED');
    }
  });

  it('a budget of 0 refuses every input; no budget is unbounded (decodeCbor behaviour unchanged)', () => {
    expect(refusal(() => readCbor(Uint8Array.of(0x00), 'v', 1, { maxItems: 0 })).code).toBe('OVERSIZED');
    const many = encodeCbor(new Array(5000).fill(new Uint8Array(0)));
    expect((readCbor(many, 'v', many.length) as unknown[]).length).toBe(5000);
  });
});

// Ratchet v2 (spec/13-ratchet-v2.md): encrypted headers, KDF_RK2, BodyV2, bounded header trials.
import { describe, expect, it } from 'vitest';
import { cryptoProvider } from '../src/index.ts';
import { backends, str, text } from './support/parties.ts';
import { pairV2 } from './support/ratchet-v2.ts';

describe.each(backends.map((b) => [b.name, b] as const))('ratchet v2 (%s backend)', (_n, backend) => {
  const provider = cryptoProvider(backend);

  it('round-trips a ping-pong conversation and one-direction runs', () => {
    const { a, b } = pairV2(provider);
    expect(str(b.receive(a.send(text('hello'))))).toBe('hello');
    for (let i = 0; i < 10; i++) {
      expect(str(a.receive(b.send(text(`b${i}`))))).toBe(`b${i}`);
      expect(str(b.receive(a.send(text(`a${i}`))))).toBe(`a${i}`);
    }
    for (let i = 0; i < 50; i++) expect(str(b.receive(a.send(text(`x${i}`))))).toBe(`x${i}`);
  });
});

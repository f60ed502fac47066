// The generator is the single source of truth: rebuilding the vectors with
// either backend must give the checked-in files byte for byte. A difference
// is a wire or storage break: regenerate (npm run vectors) only on purpose,
// with a version bump (test-vectors/README.md).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildVectors } from '../scripts/build.ts';
import { backends } from './support.ts';

describe.each(backends.map((b) => [b.name, b] as const))('regenerated vectors (%s backend)', (_name, backend) => {
  it('equal the checked-in files byte for byte', () => {
    const built = buildVectors(backend);
    expect([...built.keys()].sort()).toEqual([
      'cbor.json',
      'groups.json',
      'handshake.json',
      'keys.json',
      'padding.json',
      'ratchet.json',
      'records.json',
      'safety-number.json',
      'versions.json',
    ]);
    for (const [name, text] of built) {
      const onDisk = readFileSync(new URL(`../${name}`, import.meta.url), 'utf8');
      // Compare as a boolean first: a failing diff of 170 KB of hex helps nobody; name the first differing line instead.
      if (onDisk !== text) {
        const a = onDisk.split('\n');
        const b = text.split('\n');
        const line = a.findIndex((l, i) => l !== b[i]);
        expect.fail(`${name} differs from the generator at line ${line + 1}: run \`npm run vectors\` only if the change is deliberate`);
      }
    }
  });
});

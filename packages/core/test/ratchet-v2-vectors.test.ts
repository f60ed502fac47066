// test-vectors/ratchet-v2.json: rebuilt by core with each backend, it must equal the
// checked-in file byte for byte (the build replays every step and refusal through core's
// ratchet v2 and stops on any difference); the independent verifier recomputes it
// (test-vectors/test/verifier.test.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { backends } from './support/parties.ts';
import { RATCHET_V2_FILE, buildRatchetV2Vectors } from './support/ratchet-v2-vectors.ts';

describe.each(backends.map((b) => [b.name, b] as const))('test-vectors/ratchet-v2.json (%s backend)', (_n, backend) => {
  it('is what core computes, byte for byte', () => {
    const built = buildRatchetV2Vectors(backend);
    const onDisk = readFileSync(RATCHET_V2_FILE, 'utf8');
    if (built !== onDisk) {
      const line = onDisk.split('\n').findIndex((l, i) => l !== built.split('\n')[i]);
      expect.fail(`ratchet-v2.json differs from core at line ${line + 1}`);
    }
    const file = JSON.parse(onDisk);
    const codes = file.testGroups.flatMap((g: { tests: { error?: string }[] }) => g.tests.map((t) => t.error).filter(Boolean));
    for (const code of ['HEADER_DECRYPT_FAILED', 'PQ_EPOCH_INVALID', 'FRANKING_TAG_MISMATCH', 'DECRYPT_FAILED', 'DUPLICATE_MESSAGE']) {
      expect(codes).toContain(code);
    }
  });
});

/**
 * `npm run vectors`: regenerates test-vectors/*.json from fixed seeds.
 * `npm run vectors -- --check`: writes nothing, exits 1 if any file would change.
 *
 * A changed byte in a vector is a wire or storage break: commit it only on
 * purpose, with a version bump (test-vectors/README.md).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { nodeBackend } from '@parley/core/node';
import { buildVectors } from './build.ts';

const dir = new URL('../', import.meta.url);
const check = process.argv.includes('--check');
let changed = 0;
for (const [name, text] of buildVectors(nodeBackend)) {
  const url = new URL(name, dir);
  let old: string | null = null;
  try {
    old = readFileSync(url, 'utf8');
  } catch {
    old = null;
  }
  if (old === text) continue;
  changed++;
  if (check) console.log(`${name}: differs from the generator`);
  else {
    writeFileSync(url, text);
    console.log(`${name}: written`);
  }
}
if (changed === 0) console.log('vectors: up to date');
if (check && changed > 0) process.exitCode = 1;

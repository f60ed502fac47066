#!/usr/bin/env node
/**
 * `npm run build`: compiles each published package to its dist/ folder
 * (ESM JavaScript, .d.ts, source maps with the sources inlined), in
 * dependency order: core, then relay and client, which compile against
 * core's built declarations exactly as a consumer would.
 *
 * Incremental (tsc --build, build info under node_modules/.cache, never
 * packed): a rebuild with nothing changed takes about a second, so `npm start` can
 * build every time. `--clean` empties dist/ first (packing does, so that
 * a file deleted from src/ cannot linger in dist/ and get published).
 *
 * Plain JavaScript so it runs before anything is built. Development and
 * tests never need it: inside the repository @parley/* imports resolve to
 * src/ through the `parley:source` export condition.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['core', 'relay', 'client'];
/** Compiled entry points that are installed as commands (npm marks bins executable on install; this is for the repository). */
const BINS = ['packages/relay/dist/cli/bin.js', 'packages/client/dist/cli/bin.js'];

// `--clean` empties every dist/ first; `--clean core` only core's (each package's prepack cleans its own).
const cleanAt = process.argv.indexOf('--clean');
const cleanOnly = cleanAt >= 0 ? process.argv.slice(cleanAt + 1).filter((a) => !a.startsWith('-')) : [];
const shouldClean = (name) => cleanAt >= 0 && (cleanOnly.length === 0 || cleanOnly.includes(name));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const projects = [];
for (const name of PACKAGES) {
  const dir = join(ROOT, 'packages', name);
  // Where tsconfig.build.json keeps its build info.
  const buildInfo = join(ROOT, 'node_modules', '.cache', 'parley-build', `${name}.tsbuildinfo`);
  if (shouldClean(name)) rmSync(join(dir, 'dist'), { recursive: true, force: true });
  // The build info says what dist/ holds; without dist/ it would wrongly say "nothing to do".
  if (!existsSync(join(dir, 'dist'))) rmSync(buildInfo, { force: true });
  projects.push(join(dir, 'tsconfig.build.json'));
}
// Build mode, in the order listed: an up-to-date tree costs about a second.
execFileSync(process.execPath, [tsc, '--build', ...projects], { stdio: 'inherit', cwd: ROOT });
for (const bin of BINS) if (existsSync(join(ROOT, bin))) chmodSync(join(ROOT, bin), 0o755);

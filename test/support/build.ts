/**
 * Tests of the published artefacts (the relay binary, packed tarballs) run
 * the compiled dist/. `ensureBuilt` brings it up to date with
 * `npm run build` (tsc --build: about a second when nothing changed), one
 * test file at a time: parallel test files wait on a lock folder rather
 * than writing dist/ together.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LOCK = join(ROOT, 'node_modules', '.cache', 'parley-build.lock');
/** A lock older than this was left by a killed run. */
const STALE_LOCK_MS = 5 * 60_000;

/** An environment for running compiled JavaScript: without the repository's source condition (vitest sets it for tsx children). */
export function plainNodeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _sourceCondition, ...inherited } = process.env;
  return { ...inherited, ...extra };
}

export async function ensureBuilt(): Promise<void> {
  mkdirSync(join(ROOT, 'node_modules', '.cache'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch {}
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, env: plainNodeEnv(), stdio: 'pipe' });
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

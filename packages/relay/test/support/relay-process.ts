/**
 * Real relay processes for tests that need one to die (kill -9) or several
 * to share a database: `node --import tsx src/main.ts`, the entry point
 * `npm start` runs, each on a free port on 127.0.0.1 in one data folder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
/** How long a process may take to listen (tsx compiles the sources on the way up; the machine is shared). */
const START_TIMEOUT_MS = 30_000;

export interface RelayProcess {
  readonly child: ChildProcess;
  /** `http://127.0.0.1:PORT`, as the process logged it once listening. */
  readonly url: string;
}

export interface RelayProcesses {
  /** The data folder every process of this set runs in. */
  readonly dataDir: string;
  /** Starts one more process; resolves once it listens, rejects with its output if it exits or does not listen in time. */
  start(): Promise<RelayProcess>;
  /** Kills (SIGKILL) every process still running and deletes the data folder: for the file's `afterAll`. */
  dispose(): void;
}

/** A set of relay processes in a fresh data folder named `parley-<prefix>-…`, each with `env` over this process's environment. */
export function relayProcesses(prefix: string, env: Readonly<Record<string, string | undefined>> = {}): RelayProcesses {
  const dataDir = mkdtempSync(join(tmpdir(), `parley-${prefix}-`));
  const children: ChildProcess[] = [];
  return {
    dataDir,
    start() {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], {
        env: { ...process.env, PARLEY_LOG_LEVEL: 'info', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      return new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`relay did not start: ${out}`)), START_TIMEOUT_MS);
        child.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          // The info-level "listening" line carries the address.
          const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve({ child, url: m[1] as string });
          }
        });
        child.stderr?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
        });
        child.once('exit', (code) => reject(new Error(`relay exited (${code}): ${out}`)));
      });
    },
    dispose() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

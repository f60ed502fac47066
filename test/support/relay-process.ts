/**
 * Starts the compiled relay binary (packages/relay/dist/cli/bin.js, what
 * `parley-relay` runs) as a child process and waits for its "relay
 * listening" log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, plainNodeEnv } from './build.ts';

export const RELAY_BIN = join(ROOT, 'packages', 'relay', 'dist', 'cli', 'bin.js');

export interface RelayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>;
}

const running = new Set<ChildProcess>();

/** For afterAll: kills whatever is still running. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** Runs the binary with args and env; resolves once it listens (rejects with its output if it exits first). */
export function startRelay(args: readonly string[], env: Record<string, string> = {}, bin = RELAY_BIN): Promise<RelayProcess> {
  const child = spawn(process.execPath, [bin, '--port', '0', ...args], {
    env: plainNodeEnv({ PARLEY_LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start in 30 s:\n${out}`)), 30_000);
    const onData = () => {
      const m = /"url":"(http:\/\/[^"]+)".*"msg":"relay listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, output: () => out, exited });
      }
    };
    child.stdout?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code}) before listening:\n${out}`));
    });
  });
}

/** Runs the binary to completion (a failing start, --help, backup, migrate). */
export function runRelay(
  args: readonly string[],
  env: Record<string, string> = {},
  bin = RELAY_BIN,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: plainNodeEnv({ PARLEY_LOG_LEVEL: 'warn', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    }),
  );
}

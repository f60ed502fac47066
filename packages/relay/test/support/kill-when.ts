/**
 * For kill -9 tests: waits until a child's output shows it reached the moment to kill it, then
 * kills it with SIGKILL and waits for its exit. Rejects with the output so far if the child exits
 * first or the moment does not come within `ms`.
 */
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';

export async function killWhen(
  child: ChildProcessByStdio<null, Readable, Readable>,
  ready: (output: string) => boolean,
  what: string,
  ms = 20_000,
): Promise<string> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} never happened: ${out}`)), ms);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (ready(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code) => reject(new Error(`the child exited (${code}) before ${what}: ${out}`)));
  });
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
  return out;
}

// kill -9 loses nothing acknowledged: the relay runs as a child process
// (npm start's entry point), senders keep sending, the relay is killed with
// SIGKILL mid-stream, restarted on the same data folder, and every envelope
// that got a 200 must be there. spec/09-relay.md §7.1.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TestRelayClient, type TestDevice, makeDevice, preKeysOf } from './support.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'parley-kill9-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts `node --import tsx src/main.ts` on a free port; resolves with its URL once it listens. */
function startRelay(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--port', '0', '--data-dir', dataDir], {
    env: { ...process.env, PARLEY_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${out}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string });
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code) => reject(new Error(`relay exited (${code}): ${out}`)));
  });
}

const client = (url: string, d: TestDevice) => new TestRelayClient({ baseUrl: url, signer: d.signer, retries: 0 });

describe('kill -9', () => {
  it('every acknowledged envelope survives a SIGKILL and a restart', async () => {
    const first = await startRelay();
    const alice = makeDevice(undefined, 1, { oneTimePreKeys: 2, kemPreKeys: 1 });
    const bob = makeDevice(undefined, 1, { oneTimePreKeys: 2, kemPreKeys: 1 });
    for (const d of [alice, bob]) await client(first.url, d).registerDevice(d.device.certificate, preKeysOf(d.prekeys));

    const acknowledged: string[] = [];
    let killed = false;
    const sender = client(first.url, alice);
    const worker = async (w: number) => {
      for (let i = 0; !killed; i++) {
        const id = `w${w}-${i}`;
        try {
          await sender.send([{ accountKey: bob.account.publicKey, deviceId: 1, id, envelope: new Uint8Array(1024).fill(i & 0xff) }]);
          acknowledged.push(id);
          if (acknowledged.length >= 300 && !killed) {
            killed = true;
            first.child.kill('SIGKILL');
          }
        } catch {
          return; // the relay is gone
        }
      }
    };
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    await exited;
    expect(acknowledged.length).toBeGreaterThanOrEqual(300);

    const second = await startRelay();
    const stored = new Set<string>();
    const reader = client(second.url, bob);
    for (let after = 0; ; ) {
      const page = await reader.fetchMessages({ limit: 500, after });
      for (const m of page.messages) stored.add(m.id);
      if (!page.more) break;
      after = page.messages.at(-1)?.seq ?? after;
    }
    const lost = acknowledged.filter((id) => !stored.has(id));
    expect(lost).toEqual([]);
    second.child.kill('SIGTERM');
    await new Promise((resolve) => second.child.once('exit', resolve));
  });
});

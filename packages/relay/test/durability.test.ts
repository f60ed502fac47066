// kill -9 loses nothing acknowledged: the relay runs as a child process
// (npm start's entry point), senders keep sending, the relay is killed with
// SIGKILL mid-stream, restarted on the same data folder, and every envelope
// that got a 200 must be there. spec/09-relay.md §7.1.
import { afterAll, describe, expect, it } from 'vitest';
import { TestRelayClient, type TestDevice, makeDevice, preKeysOf } from './support.ts';
import { relayProcesses } from './support/relay-process.ts';

const relays = relayProcesses('kill9');
afterAll(() => relays.dispose());

const client = (url: string, d: TestDevice) => new TestRelayClient({ baseUrl: url, signer: d.signer, retries: 0 });

describe('kill -9', () => {
  it('every acknowledged envelope survives a SIGKILL and a restart', async () => {
    const first = await relays.start();
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

    const second = await relays.start();
    const stored = new Set(await client(second.url, bob).fetchAllMessageIds());
    const lost = acknowledged.filter((id) => !stored.has(id));
    expect(lost).toEqual([]);
    second.child.kill('SIGTERM');
    await new Promise((resolve) => second.child.once('exit', resolve));
  });
});

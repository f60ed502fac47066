/**
 * The load test's listening devices in a process of their own (forked by
 * load.ts): each registers, holds its delivery websocket through the
 * client's receiver, and reports when each envelope reached its handler.
 *
 * Why a process: in the generator's own process a delivered envelope waits
 * until the generator has finished encoding and writing its next send frames
 * (its event loop was 30-50 ms late at the p99 at 5,000 envelopes/s,
 * bench/results/relay-latency.md), so the measured delivery included the
 * generator's backlog. Here nothing else runs on the loop. Times are wall
 * clock at sub-millisecond resolution (performance.timeOrigin + now()), which
 * two processes on one machine share.
 *
 * Push frames (spec/09-relay.md §5.2.2): binary CBOR by default, as the
 * client SDK asks for them; `push: 'json'` in the start message keeps the
 * JSON text frames, so one load run can measure either.
 *
 * IPC in: {type:'start', url, count, push?: 'cbor' | 'json'}, {type:'mark'}, {type:'stop'}.
 * IPC out: {type:'ready', accounts: base64url[]}, {type:'got', items: [id, serverTimestamp, at][]},
 *   {type:'stopped', lagP99Ms, cpuUs, envelopes}: CPU and envelopes handled since the last 'mark'
 *   (the half-rate phase's start), so start-up, key generation and registration are not counted.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Account, PreKeyStore } from '@parley/core';
import { RelayClient, deviceSigner, preKeysOf, toBase64Url } from '@parley/client/relay-client';
import WebSocket from 'ws';

/** How often received times go to the parent: often enough that its wait for the last envelope is short. */
const REPORT_EVERY_MS = 20;

const send = (m: unknown) => process.send?.(m);
const now = () => performance.timeOrigin + performance.now();
let receivers: ReturnType<RelayClient['connect']>[] = [];
let got: [string, number, number][] = [];
const lag = monitorEventLoopDelay({ resolution: 10 });
let cpu0 = process.cpuUsage();
/** Envelopes handled since the last mark. */
let handled = 0;

const report = setInterval(() => {
  if (got.length === 0) return;
  send({ type: 'got', items: got });
  got = [];
}, REPORT_EVERY_MS);

async function start(url: string, count: number, push: 'cbor' | 'json'): Promise<void> {
  const accounts: string[] = [];
  for (let i = 0; i < count; i++) {
    const account = Account.generate();
    const device = account.createDevice(1);
    const client = new RelayClient({ baseUrl: url, signer: deviceSigner(device), WebSocket: WebSocket as never });
    await client.registerDevice(device.certificate, preKeysOf(PreKeyStore.generate(device, { oneTimePreKeys: 0, kemPreKeys: 0 })));
    const onEnvelope = (e: { id: string; serverTimestamp: number }) => {
      handled++;
      got.push([e.id, e.serverTimestamp, now()]);
    };
    receivers.push(client.connect({ onEnvelope }, { binaryPush: push === 'cbor' }));
    accounts.push(toBase64Url(account.publicKey));
  }
  await Promise.all(receivers.map((r) => r.start().whenOpen()));
  lag.enable();
  send({ type: 'ready', accounts });
}

process.on('message', (m: { type?: string; url?: string; count?: number; push?: string }) => {
  if (m?.type === 'start') void start(m.url ?? '', m.count ?? 4, m.push === 'json' ? 'json' : 'cbor');
  else if (m?.type === 'mark') {
    cpu0 = process.cpuUsage();
    handled = 0;
    lag.reset();
  } else if (m?.type === 'stop') {
    for (const r of receivers) r.stop();
    receivers = [];
    clearInterval(report);
    if (got.length) send({ type: 'got', items: got });
    const cpu = process.cpuUsage(cpu0);
    process.send?.({ type: 'stopped', lagP99Ms: lag.percentile(99) / 1e6, cpuUs: cpu.user + cpu.system, envelopes: handled }, () =>
      process.exit(0),
    );
  }
});
process.on('disconnect', () => process.exit(0));

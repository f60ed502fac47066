/**
 * A load-generator process for the websocket capacity probe: creates its
 * share of devices (real identities and prekeys), hands their public
 * registration records to the parent (which has the relay store them), then
 * opens one authenticated delivery websocket per device and keeps it open.
 * Issue 5 §4.
 *
 * Two or more of these (one per 20,000 connections, each from its own
 * loopback source address) share the work so that the relay process, not one client
 * process, meets the per-process limits first.
 *
 * IPC in: {type:'generate', count}, {type:'connect', url, seconds, localAddress}, {type:'close'}.
 * IPC out: {type:'devices', records, last}, {type:'progress', n}, {type:'done', connected, failed, firstError}.
 */
import { Account, type DeviceIdentity, PreKeyStore, encodeCertificate, encodeKemPreKey, encodeSignedPreKey, fromUtf8 } from '@parley/core';
import { WEBSOCKET_LABEL, deviceSigner, fromBase64Url, toBase64Url, websocketStatementBody } from '@parley/client/relay-client';
import WebSocket from 'ws';
import type { DeviceRegistration } from './host.ts';

const send = (m: unknown) => process.send?.(m);
const devices: DeviceIdentity[] = [];
const sockets: WebSocket[] = [];
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

function generate(count: number): void {
  const CHUNK = 250;
  let records: DeviceRegistration[] = [];
  for (let i = 0; i < count; i++) {
    const device = Account.generate().createDevice(1);
    // Registration needs the signed prekey and the last-resort KEM prekey only.
    const prekeys = PreKeyStore.generate(device, { oneTimePreKeys: 0, kemPreKeys: 0 });
    const spk = prekeys.currentSignedPreKey();
    const kem = prekeys.lastResortKemPreKey();
    devices.push(device);
    records.push({
      certificate: b64(encodeCertificate(device.certificate)),
      signedPreKey: { id: spk.id, encoded: b64(encodeSignedPreKey(spk)) },
      kemPreKey: { id: kem.id, encoded: b64(encodeKemPreKey(kem)) },
    });
    if (records.length === CHUNK || i === count - 1) {
      send({ type: 'devices', records, last: i === count - 1 });
      records = [];
    }
  }
  if (count === 0) send({ type: 'devices', records: [], last: true });
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${(e as { code?: string }).code ?? e.name}: ${e.message}`.slice(0, 200);
  return String(e).slice(0, 200);
}

/** Runs `task` for i in 0..count-1 with at most `limit` in flight, stopping early past `deadline`. */
async function pool(count: number, limit: number, deadline: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count && Date.now() < deadline) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
}

/** `localAddress`: the loopback source address of this process's connections (each has its own ephemeral ports). */
async function connect(url: string, seconds: number, localAddress: string | undefined): Promise<void> {
  const base = new URL(url);
  const wsUrl = new URL('/v1/websocket', base);
  wsUrl.protocol = 'ws:';
  let connected = 0;
  let failed = 0;
  let firstError: string | null = null;
  await pool(devices.length, 200, Date.now() + seconds * 1000, async (i) => {
    const signer = deviceSigner(devices[i] as DeviceIdentity);
    await new Promise<void>((resolve) => {
      let settled = false;
      const settle = (ok: boolean, why?: string) => {
        if (settled) return;
        settled = true;
        if (ok) {
          connected++;
          if (connected % 1000 === 0) send({ type: 'progress', n: connected });
        } else {
          failed++;
          firstError ??= `connect: ${why}`;
        }
        resolve();
      };
      const ws = new WebSocket(wsUrl, localAddress ? { localAddress } : {});
      sockets.push(ws);
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; challenge?: string };
        if (frame.type === 'challenge' && frame.challenge) {
          const body = websocketStatementBody(base.host, fromBase64Url(frame.challenge), signer);
          const signature = signer.signStatement(WEBSOCKET_LABEL, body);
          ws.send(
            JSON.stringify({
              type: 'auth',
              account: toBase64Url(signer.accountKey),
              deviceId: signer.deviceId,
              signature: toBase64Url(signature),
            }),
          );
        } else if (frame.type === 'ready') settle(true);
      });
      ws.on('error', (e) => settle(false, describe(e)));
      ws.on('close', (code, reason) => settle(false, `closed ${code} ${fromUtf8(reason)}`));
    });
  });
  send({ type: 'done', connected, failed, firstError });
}

process.on('message', (m: { type?: string; count?: number; url?: string; seconds?: number; localAddress?: string }) => {
  if (m?.type === 'generate') generate(m.count ?? 0);
  else if (m?.type === 'connect') {
    connect(m.url ?? '', m.seconds ?? 10, m.localAddress).catch((e) =>
      send({ type: 'done', connected: 0, failed: 0, firstError: describe(e) }),
    );
  } else if (m?.type === 'close') {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

/**
 * A relay process for the capacity probe: started by relay/capacity.ts with
 * an IPC channel, on 127.0.0.1 and a free port, with a throwaway data
 * folder. Issue 5 §4 ("the number of concurrent websocket connections one
 * relay process holds on this machine").
 *
 * The relay runs in its own process so that what it holds (sockets, file
 * descriptors, memory) is its own and not shared with the load generator.
 * The per-IP request limit and the connection caps are lifted: every
 * connection comes from 127.0.0.1, and counting them is the point.
 *
 * Devices are registered straight into the relay's storage (the same
 * `registerDevice` the PUT /v1/devices route ends in, minus the HTTP and
 * signature checks): registering 20,000 devices over HTTP takes minutes on
 * this machine, and registration is not what this probe measures.
 *
 * IPC in: {type:'register', records}, {type:'stats'}, {type:'close'}.
 * IPC out: {type:'ready', url}, {type:'registered', n, firstError}, {type:'stats', heapUsed, sockets}.
 * Closes when the parent goes away.
 */
import { getHeapStatistics } from 'node:v8';
import { decodeCertificate } from '@parley/core';
import { startServer, withDefaults } from '@parley/relay';

const dataDir = process.argv[2];
if (!dataDir || !process.send) {
  process.stderr.write('usage: forked by bench/src/relay/capacity.ts with a data folder\n');
  process.exit(2);
}

const relay = await startServer(
  withDefaults({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    logLevel: 'warn',
    metrics: false,
    rateLimits: { requestsPerMinutePerIp: 1_000_000_000 },
    // Every probe connection comes from 127.0.0.1 and the probe opens thousands at once:
    // lift the connection caps and give each socket time to authenticate under that load.
    limits: { maxConnections: 1_000_000, maxConnectionsPerAddress: 1_000_000 },
    websocketAuthTimeoutSeconds: 120,
  }),
);
const send = (m: unknown) => process.send?.(m);
send({ type: 'ready', url: relay.url });

/** Open websockets as the ws server counts them (authenticated or not yet). */
function sockets(): number {
  const server = (relay.app as unknown as { websocketServer?: { clients: Set<unknown> } }).websocketServer;
  return server?.clients.size ?? -1;
}

export interface DeviceRegistration {
  /** base64: encodeCertificate output, encodeSignedPreKey output, encodeKemPreKey output. */
  readonly certificate: string;
  readonly signedPreKey: { id: number; encoded: string };
  readonly kemPreKey: { id: number; encoded: string };
}

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

async function register(records: readonly DeviceRegistration[]): Promise<void> {
  const ctx = relay.app.relay;
  let n = 0;
  let firstError: string | null = null;
  await Promise.all(
    records.map(async (r) => {
      try {
        const certificate = bytes(r.certificate);
        const c = decodeCertificate(certificate);
        const result = await ctx.storage.registerDevice({
          device: {
            accountKey: c.accountKey,
            deviceId: c.deviceId,
            certificate,
            certificateHash: ctx.provider.backend.sha256(certificate),
            signingKey: c.signingKey,
            registeredAt: ctx.now(),
          },
          keys: {
            signedPreKey: { id: r.signedPreKey.id, encoded: bytes(r.signedPreKey.encoded) },
            lastResortKemPreKey: { id: r.kemPreKey.id, encoded: bytes(r.kemPreKey.encoded) },
          },
          maxDevicesPerAccount: ctx.config.limits.maxDevicesPerAccount,
          preKeyLimits: ctx.config.limits,
        });
        if (result.status === 'created') n++;
        else firstError ??= `register: ${result.status}`;
      } catch (e) {
        firstError ??= `register: ${e instanceof Error ? e.message : String(e)}`;
      }
    }),
  );
  send({ type: 'registered', n, firstError });
}

let closing = false;
async function close(): Promise<void> {
  if (closing) return;
  closing = true;
  await relay.close().catch(() => {});
  process.exit(0);
}

process.on('message', (m: { type?: string; records?: DeviceRegistration[] }) => {
  if (m?.type === 'register') void register(m.records ?? []);
  else if (m?.type === 'stats') {
    // Not process.memoryUsage(): it reads /proc through a file descriptor, and at the fd limit there is none
    // left. The parent reads this process's RSS from /proc instead.
    // A full collection first (when started with --expose-gc): garbage is not what connections hold.
    (globalThis as { gc?: () => void }).gc?.();
    send({ type: 'stats', heapUsed: getHeapStatistics().used_heap_size, sockets: sockets() });
  } else if (m?.type === 'close') void close();
});
process.on('disconnect', () => void close());

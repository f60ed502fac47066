/**
 * `parley-relay --help`, generated from the configuration definition
 * (config.ts OPTIONS and DEFAULT_CONFIG): an option added there appears here
 * with its flag, environment variable and default without further edits.
 * The one-line meanings below are the README's; an option without one is
 * still listed.
 */
import { DEFAULT_CONFIG, OPTIONS } from '../config.ts';

const MEANING: Readonly<Record<string, string>> = {
  host: 'listen address',
  port: 'listen port (0: any free port, printed in the log)',
  dataDir: 'relay.sqlite, attachments/ and the lock file',
  logLevel: 'pino level; debug adds one line per request',
  metrics: 'serve /metrics (Prometheus)',
  trustProxy: 'trust X-Forwarded-For (only behind your own proxy)',
  databaseUrl: 'postgres://user:password@host:port/db selects PostgreSQL; empty: SQLite in the data directory',
  databaseSchema: 'PostgreSQL schema for this deployment (default: the role search_path)',
  blobStore: 'attachment bytes: auto, file (data directory) or postgres (no shared disk)',
  corsOrigins: 'comma-separated web origins allowed to call the relay (CORS, websocket Origin); * for any',
  shutdownTimeoutSeconds: 'longest graceful shutdown on SIGTERM/SIGINT before exiting anyway',
  messageTtlSeconds: 'how long an unacknowledged message waits',
  attachmentTtlSeconds: 'how long a finished attachment is kept',
  uploadTtlSeconds: 'how long an unfinished upload may be resumed',
  authWindowSeconds: 'accepted clock difference of signed requests, each way',
  replayCacheEntries: 'signatures remembered against replay; full means 503',
  sweepIntervalSeconds: 'how often expired data is deleted',
  maxRequestBytes: 'largest JSON request body',
  maxEnvelopeBytes: "largest envelope (core's MAX_MESSAGE_BYTES)",
  maxEnvelopesPerSend: 'recipient devices in one send',
  maxRecipientsPerFanout: 'recipient devices of one group fan-out (one envelope stored once)',
  maxDevicesPerAccount: 'devices per account',
  maxQueuedMessagesPerDevice: 'mailbox depth; beyond it sends get 507 MAILBOX_FULL',
  maxQueuedBytesPerDevice: 'mailbox bytes',
  maxOneTimePreKeys: 'one-time X25519 prekeys held per device',
  maxKemPreKeys: 'one-time ML-KEM prekeys held per device',
  maxAttachmentBytes: 'largest attachment',
  maxUploadChunkBytes: 'largest upload request (one chunk)',
  maxPendingUploadsPerDevice: 'unfinished uploads per device',
  maxWebSocketFrameBytes: 'largest websocket frame a client may send',
  maxInFlightPerConnection: 'envelopes pushed and not yet acknowledged',
  maxInFlightBytesPerConnection: 'bytes pushed and not yet acknowledged',
  maxInFlightSendsPerConnection: 'websocket send frames received and not yet answered',
  requestsPerMinutePerIp: 'every request and websocket upgrade per client address',
  bundleFetchesPerMinutePerAccount: 'prekey bundle fetches per requesting account',
  oneTimePreKeysPerHourPerDevice: 'one-time keys handed out per target device',
  messageBytesPerMinutePerRecipient: 'envelope bytes accepted for one recipient account',
  attachmentsPerHourPerDevice: 'uploads started per device',
  websocketSendsPerMinutePerDevice: 'send frames per device on its websocket',
  reportCheckBytesPerDayPerAccount: 'report file-check work per reporter account (refused reports spend it)',
};

function defaultOf(path: string): string {
  const [head, leaf] = path.split('.') as [string, string | undefined];
  const top = (DEFAULT_CONFIG as unknown as Record<string, unknown>)[head];
  const value = leaf === undefined ? top : (top as Record<string, unknown>)[leaf];
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.join(',');
  if (value === '') return '(none)';
  return String(value);
}

export function helpText(): string {
  const rows = OPTIONS.map((o) => {
    const meaning = MEANING[o.path.split('.').pop() as string];
    return {
      left: `--${o.flag} <${o.kind === 'bool' ? 'true|false' : o.kind === 'int' ? 'n' : 'value'}>`,
      env: o.env,
      def: defaultOf(o.path),
      meaning,
    };
  });
  const width = Math.max(...rows.map((r) => r.left.length));
  const lines = rows.map((r) => {
    const detail = [r.meaning, `env ${r.env}`, `default ${r.def}`].filter(Boolean).join('; ');
    return `  ${r.left.padEnd(width)}  ${detail}`;
  });
  return `parley-relay: the Parley relay (blind store-and-forward server for end-to-end encrypted chat)

usage:
  parley-relay [options]                 start the relay (the default command)
  parley-relay migrate [options]         create or upgrade the database schema, then exit
  parley-relay backup <folder> [options] online backup of a SQLite relay into <folder> (created if missing)
  parley-relay reports list [options]    the moderator tool: queued abuse reports, oldest first
  parley-relay reports show <id>         one report, its contents and whether it still verifies
  parley-relay reports verify [<id>]     re-verify one report or all (exit 3 if one does not verify)
  parley-relay --help | --version

Every option is also an environment variable; a flag wins over the environment.
Limits and what clients see when they hit one: spec/09-relay.md §8.

options:
${lines.join('\n')}

debugging:
  PARLEY_TAIL_TRACE=<file>  record commits, checkpoints, GC pauses and event-loop gaps in memory and
                            write them to <file> at exit (bench/src/relay/load.ts --tail reads it);
                            at most 400,000 events (under 128 MiB), later ones counted as dropped
`;
}

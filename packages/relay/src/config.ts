/**
 * Relay configuration: defaults, environment variables and command-line
 * flags (flags win over the environment, which wins over defaults).
 * packages/relay/README.md lists every option; spec/09-relay.md §8 explains
 * the limits.
 *
 * Each option has one name in three spellings: `messageTtlSeconds` in code,
 * `PARLEY_MESSAGE_TTL_SECONDS` in the environment, `--message-ttl-seconds`
 * on the command line. HOST and PORT keep their conventional names.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { limits as coreLimits } from '@parley/core';

export interface RelayLimits {
  /**
   * Largest send body (POST /v1/messages): a fan-out of many envelopes. Other routes have fixed
   * limits sized to their content (front-door/body-limits.ts). Never below one largest envelope.
   */
  maxRequestBytes: number;
  /** Largest envelope (one encrypted message to one device); core's own bound by default. */
  maxEnvelopeBytes: number;
  /** Most envelopes in one send: a fan-out to every device of many accounts still fits. */
  maxEnvelopesPerSend: number;
  /**
   * Most recipient devices of one group fan-out (POST /v1/messages/fanout):
   * core's largest sender-key group (MAX_GROUP_MEMBER_DEVICES, 5000), so one
   * upload reaches any group; past it one transaction's row locks and the
   * request body would grow for no group that exists.
   */
  maxRecipientsPerFanout: number;
  /** Devices per account (Signal allows a handful of linked devices; this is generous). */
  maxDevicesPerAccount: number;
  /** Stored messages per device mailbox; a sender gets MAILBOX_FULL beyond it. */
  maxQueuedMessagesPerDevice: number;
  /** Stored envelope bytes per device mailbox. */
  maxQueuedBytesPerDevice: number;
  /**
   * One sender account's share of one mailbox, in percent of both mailbox
   * limits (spec/09-relay.md §8.3); past it only that sender is refused. A
   * percentage, so an operator who raises the mailbox limits raises the
   * shares with them.
   */
  maxMailboxPercentPerSender: number;
  /** One-time X25519 prekeys held per device. */
  maxOneTimePreKeys: number;
  /** One-time ML-KEM prekeys held per device (1184 bytes each). */
  maxKemPreKeys: number;
  /** Largest attachment (encrypted blob). */
  maxAttachmentBytes: number;
  /** Largest single upload request (a chunk of a resumable upload). */
  maxUploadChunkBytes: number;
  /** Unfinished uploads per device. */
  maxPendingUploadsPerDevice: number;
  /** Stored attachment bytes (declared sizes, unexpired) per uploading device. */
  maxAttachmentBytesPerDevice: number;
  /** Stored attachment bytes per account (all its devices together). */
  maxAttachmentBytesPerAccount: number;
  /** Largest websocket frame a client may send (auth and acks only). */
  maxWebSocketFrameBytes: number;
  /** Envelopes pushed on a websocket and not yet acknowledged. */
  maxInFlightPerConnection: number;
  /** Open TCP connections in total (below the file-descriptor limit, with room for storage and files). */
  maxConnections: number;
  /** Open TCP connections from one client address. */
  maxConnectionsPerAddress: number;
  /** Bytes of envelopes pushed and not yet acknowledged. */
  maxInFlightBytesPerConnection: number;
  /** Send frames on one websocket received and not yet answered (spec/09-relay.md §5.4). */
  maxInFlightSendsPerConnection: number;
}

export interface RelayRateLimits {
  /** All HTTP requests and websocket upgrades per client IP per minute. */
  requestsPerMinutePerIp: number;
  /** Bundle fetches per requesting account per minute (prekey exhaustion). */
  bundleFetchesPerMinutePerAccount: number;
  /**
   * One-time prekey hand-outs (one X25519 and one ML-KEM key each) per
   * target device per day, kept in storage. Past this the relay still
   * answers, with the last-resort KEM key and no one-time key, so an
   * attacker with many accounts cannot drain a device's pools.
   */
  oneTimePreKeysPerDayPerDevice: number;
  /** One-time prekey hand-outs per requesting account per day, over all targets. */
  oneTimePreKeysPerDayPerRequester: number;
  /** One-time prekey hand-outs per requesting account per target device per day. */
  oneTimePreKeysPerDayPerPair: number;
  /** Envelope bytes one sender account may send to one recipient account per minute. */
  messageBytesPerMinutePerRecipient: number;
  /**
   * Signed requests per signer (device, or account key) per twice the auth
   * window, remembered for replay detection in storage; past it that signer
   * alone gets 429 until its oldest requests expire.
   */
  signedRequestsPerSigner: number;
  /** Attachment uploads started per device per hour. */
  attachmentsPerHourPerDevice: number;
  /**
   * Send frames per device per minute on its websocket (spec/09-relay.md
   * §5.4): a frame carries no signature and no replay record, so this takes
   * the place of the per-IP request limit and the per-signer record quota.
   */
  websocketSendsPerMinutePerDevice: number;
  /**
   * Report file-check work per reporter account per day, in the unit of
   * core's MAX_REPORT_BLOB_BYTES (ciphertext bytes plus a fixed cost per
   * chunk), spent before any blob is read and given back when the report is
   * queued (spec/17-franking-and-reports.md §5 step 3a): refused reports
   * spend no REPORTS_PER_DAY, so this is what bounds repeating them.
   */
  reportCheckBytesPerDayPerAccount: number;
}

export interface RelayConfig {
  host: string;
  port: number;
  /** Folder for relay.sqlite and attachments/; created on first start. */
  dataDir: string;
  logLevel: string;
  /** How long an unacknowledged message waits (default 30 days). */
  messageTtlSeconds: number;
  /** How long a finished attachment is kept (default 30 days). */
  attachmentTtlSeconds: number;
  /** How long an unfinished upload may be resumed (default 1 day). */
  uploadTtlSeconds: number;
  /** Accepted clock difference for signed requests, each way. */
  authWindowSeconds: number;
  sweepIntervalSeconds: number;
  /** Time for a client to send a request's headers (slow-header clients are cut off). */
  headersTimeoutSeconds: number;
  /** Time for a whole request, body included (slow-body clients are cut off); bounds one upload chunk too. */
  requestTimeoutSeconds: number;
  /** A connection with no bytes either way for this long is closed. */
  idleTimeoutSeconds: number;
  /** How long an idle keep-alive connection waits for its next request. */
  keepAliveTimeoutSeconds: number;
  /** Time for a new websocket to authenticate (challenge-response). */
  websocketAuthTimeoutSeconds: number;
  /** Bearer token for /metrics; without one, /metrics answers only loopback clients. */
  metricsToken: string;
  /** Trust X-Forwarded-For (only behind a reverse proxy you run). */
  trustProxy: boolean;
  /** Serve /metrics (Prometheus text format). */
  metrics: boolean;
  /**
   * postgres://user:password@host:port/database selects PostgreSQL (schema
   * migrated on start); empty: SQLite at `<dataDir>/relay.sqlite`. Holds a
   * password: never logged.
   */
  databaseUrl: string;
  /** PostgreSQL schema of this deployment inside the database; empty: the role's search_path (public). */
  databaseSchema: string;
  /**
   * Where attachment bytes live: `file` (`<dataDir>/attachments/`, one
   * process or a shared disk), `postgres` (in the database: any number of
   * relay processes, no shared disk), `auto` (postgres when databaseUrl is
   * set, else file).
   */
  blobStore: 'auto' | 'file' | 'postgres';
  /** Web origins allowed to call the relay from a browser (CORS and the websocket's Origin); none by default. */
  corsOrigins: readonly string[];
  /** Longest a graceful shutdown may take before the process exits anyway. */
  shutdownTimeoutSeconds: number;
  limits: RelayLimits;
  rateLimits: RelayRateLimits;
}

const DAY = 24 * 60 * 60;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const DEFAULT_LIMITS: RelayLimits = {
  maxRequestBytes: 8 * MiB,
  maxEnvelopeBytes: coreLimits.MAX_MESSAGE_BYTES,
  maxEnvelopesPerSend: 1024,
  maxRecipientsPerFanout: 5000,
  maxDevicesPerAccount: 32,
  maxQueuedMessagesPerDevice: 50_000,
  maxQueuedBytesPerDevice: 256 * MiB,
  // A quarter (12 500 envelopes, 64 MiB): four sender accounts are needed to fill a mailbox, and a friend's share is never taken.
  maxMailboxPercentPerSender: 25,
  maxOneTimePreKeys: 1000,
  maxKemPreKeys: 200,
  maxAttachmentBytes: 100 * MiB,
  maxUploadChunkBytes: 16 * MiB,
  maxPendingUploadsPerDevice: 16,
  // 20 maximal attachments, or about a thousand photos, kept for the 30-day TTL.
  maxAttachmentBytesPerDevice: 2 * GiB,
  maxAttachmentBytesPerAccount: 4 * GiB,
  maxWebSocketFrameBytes: 64 * 1024,
  maxInFlightPerConnection: 256,
  maxConnections: 8192,
  maxConnectionsPerAddress: 64,
  maxInFlightBytesPerConnection: 8 * MiB,
  // Enough to keep a device's sends pipelined over a link with a few commits' latency (a commit is 1-3 ms
  // here); each held frame is at most maxWebSocketFrameBytes, so one connection holds at most 2 MiB of them.
  maxInFlightSendsPerConnection: 32,
};

export const DEFAULT_RATE_LIMITS: RelayRateLimits = {
  requestsPerMinutePerIp: 6000,
  bundleFetchesPerMinutePerAccount: 120,
  // Half the default ML-KEM pool (200): a full pool outlasts a day of the worst, and the device refills it when online.
  oneTimePreKeysPerDayPerDevice: 100,
  // New conversations: a large group's worth of devices a day; past it, sessions start without one-time keys.
  oneTimePreKeysPerDayPerRequester: 2000,
  // One account takes at most 4 a day from a target: 50 days to empty a 200-key pool alone.
  oneTimePreKeysPerDayPerPair: 4,
  messageBytesPerMinutePerRecipient: 128 * MiB,
  // The per-IP limit (100 a second) over the 10-minute record lifetime: it never binds before that limit for a
  // device on one address, and bounds one signer's replay records (about 100 B each) to about 6 MB.
  signedRequestsPerSigner: 60_000,
  attachmentsPerHourPerDevice: 300,
  // The per-IP request limit (100 a second): a device sends no faster on its websocket than it could over
  // HTTP from one address, and a frame may carry many envelopes.
  websocketSendsPerMinutePerDevice: 6000,
  // Four refused reports of the largest size a day (about 2 s of checking each here); queued reports give
  // their cost back, so only refused ones spend it, and an honest reporter rarely has one.
  reportCheckBytesPerDayPerAccount: 4 * 256 * MiB,
};

export const DEFAULT_CONFIG: RelayConfig = {
  host: '127.0.0.1',
  port: 8787,
  dataDir: './data',
  logLevel: 'info',
  messageTtlSeconds: 30 * DAY,
  attachmentTtlSeconds: 30 * DAY,
  uploadTtlSeconds: DAY,
  authWindowSeconds: 300,
  sweepIntervalSeconds: 60,
  headersTimeoutSeconds: 10,
  requestTimeoutSeconds: 120,
  idleTimeoutSeconds: 30,
  keepAliveTimeoutSeconds: 10,
  websocketAuthTimeoutSeconds: 5,
  metricsToken: '',
  trustProxy: false,
  metrics: true,
  databaseUrl: '',
  databaseSchema: '',
  blobStore: 'auto',
  corsOrigins: [],
  shutdownTimeoutSeconds: 10,
  limits: DEFAULT_LIMITS,
  rateLimits: DEFAULT_RATE_LIMITS,
};

/** A deep partial, for tests and embedders: `{ limits: { maxEnvelopeBytes: 2048 } }`. */
export type RelayConfigOverrides = Partial<Omit<RelayConfig, 'limits' | 'rateLimits'>> & {
  limits?: Partial<RelayLimits>;
  rateLimits?: Partial<RelayRateLimits>;
};

export function withDefaults(overrides: RelayConfigOverrides = {}): RelayConfig {
  return {
    ...DEFAULT_CONFIG,
    ...overrides,
    limits: { ...DEFAULT_LIMITS, ...overrides.limits },
    rateLimits: { ...DEFAULT_RATE_LIMITS, ...overrides.rateLimits },
  };
}

type Kind = 'string' | 'int' | 'bool' | 'list';
interface OptionSpec {
  /** Where the value goes: a top-level key or `limits.x` / `rateLimits.x`. */
  readonly path: string;
  readonly kind: Kind;
  readonly env: string;
  readonly flag: string;
}

// "PreKey" and "WebSocket" are one word each in names: PREKEYS, --websocket-...
const words = (s: string) => s.replace('PreKey', 'Prekey').replace('WebSocket', 'Websocket');
const kebab = (s: string) => words(s).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const screaming = (s: string) =>
  words(s)
    .replace(/[A-Z]/g, (c) => `_${c}`)
    .toUpperCase();

function option(path: string, kind: Kind, env?: string): OptionSpec {
  const leaf = path.split('.').pop() as string;
  return { path, kind, env: env ?? `PARLEY_${screaming(leaf)}`, flag: kebab(leaf) };
}

/** Every configurable option (also the README's table). */
export const OPTIONS: readonly OptionSpec[] = [
  option('host', 'string', 'HOST'),
  option('port', 'int', 'PORT'),
  option('dataDir', 'string'),
  option('logLevel', 'string'),
  option('messageTtlSeconds', 'int'),
  option('attachmentTtlSeconds', 'int'),
  option('uploadTtlSeconds', 'int'),
  option('authWindowSeconds', 'int'),
  option('sweepIntervalSeconds', 'int'),
  option('headersTimeoutSeconds', 'int'),
  option('requestTimeoutSeconds', 'int'),
  option('idleTimeoutSeconds', 'int'),
  option('keepAliveTimeoutSeconds', 'int'),
  option('websocketAuthTimeoutSeconds', 'int'),
  option('metricsToken', 'string'),
  option('trustProxy', 'bool'),
  option('metrics', 'bool'),
  option('databaseUrl', 'string'),
  option('databaseSchema', 'string'),
  option('blobStore', 'string'),
  option('corsOrigins', 'list'),
  option('shutdownTimeoutSeconds', 'int'),
  ...Object.keys(DEFAULT_LIMITS).map((k) => option(`limits.${k}`, 'int')),
  ...Object.keys(DEFAULT_RATE_LIMITS).map((k) => option(`rateLimits.${k}`, 'int')),
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function parseValue(spec: OptionSpec, raw: string, source: string): string | number | boolean | string[] {
  if (spec.kind === 'list') {
    // Comma-separated; an empty value is an empty list.
    return raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0);
  }
  if (spec.kind === 'string') {
    if (raw.length === 0) throw new ConfigError(`${source}: must not be empty`);
    return raw;
  }
  if (spec.kind === 'bool') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(`${source}: expected true or false`);
  }
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${source}: expected a non-negative integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new ConfigError(`${source}: too large`);
  return n;
}

/**
 * Reads configuration from `argv` (without the node and script entries) and
 * `env`. Throws ConfigError naming the bad option.
 */
export function loadConfig(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(OPTIONS.map((o) => [o.flag, { type: 'string' as const }])),
    strict: true,
    allowPositionals: false,
  });
  const config = withDefaults();
  for (const spec of OPTIONS) {
    const flagValue = values[spec.flag];
    const raw = typeof flagValue === 'string' ? flagValue : env[spec.env];
    if (raw === undefined) continue;
    const source = typeof flagValue === 'string' ? `--${spec.flag}` : spec.env;
    const value = parseValue(spec, raw, source);
    const [head, leaf] = spec.path.split('.') as [string, string | undefined];
    if (leaf === undefined) (config as unknown as Record<string, unknown>)[head] = value;
    else (config as unknown as Record<string, Record<string, unknown>>)[head]![leaf] = value;
  }
  if (config.port > 65535) throw new ConfigError('port: must be at most 65535');
  for (const key of ['headersTimeoutSeconds', 'requestTimeoutSeconds', 'idleTimeoutSeconds', 'keepAliveTimeoutSeconds'] as const) {
    // Zero would mean "never" to Node: exactly the slow-client hole these close.
    if (config[key] === 0) throw new ConfigError(`${key}: must be at least 1`);
  }
  if (config.headersTimeoutSeconds > config.requestTimeoutSeconds) {
    throw new ConfigError('headersTimeoutSeconds: must not exceed requestTimeoutSeconds');
  }
  checkBackends(config);
  config.dataDir = resolve(config.dataDir);
  return config;
}

const BLOB_STORES: readonly string[] = ['auto', 'file', 'postgres'];

/** The storage options must name something that exists and fit together. */
function checkBackends(config: RelayConfig): void {
  if (!BLOB_STORES.includes(config.blobStore)) {
    throw new ConfigError(`PARLEY_BLOB_STORE: expected one of ${BLOB_STORES.join(', ')}, got "${config.blobStore}"`);
  }
  if (config.databaseUrl !== '' && !/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    // Only the scheme is quoted: the rest may hold a password.
    throw new ConfigError('PARLEY_DATABASE_URL: expected postgres://user:password@host:port/database');
  }
  if (config.blobStore === 'postgres' && config.databaseUrl === '') {
    throw new ConfigError('PARLEY_BLOB_STORE=postgres needs PARLEY_DATABASE_URL');
  }
  if (config.databaseSchema !== '' && !/^[a-z_][a-z0-9_]{0,40}$/.test(config.databaseSchema)) {
    throw new ConfigError('PARLEY_DATABASE_SCHEMA: 1-41 lowercase letters, digits or _, not starting with a digit');
  }
  for (const origin of config.corsOrigins) {
    if (!isOrigin(origin)) {
      throw new ConfigError(`PARLEY_CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path), nor *`);
    }
  }
}

/** `https://chat.example.com`, `http://localhost:5173`, or `*` (any origin). */
export function isOrigin(value: string): boolean {
  if (value === '*') return true;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

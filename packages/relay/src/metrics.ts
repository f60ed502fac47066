/**
 * Prometheus metrics (prom-client), one registry per app so tests can build
 * several apps in one process. packages/relay/README.md lists them.
 *
 * Labels never carry account keys, device ids or client ids: only routes,
 * methods, status classes and reason codes, so a scrape reveals volumes,
 * not who talks to whom.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LoopHistogram } from './metrics-histogram.ts';
import type { RelayStorage } from './storage/types.ts';

export type RelayMetrics = ReturnType<typeof createMetrics>;

/** `openConnections` reads the connection guard's count at scrape time. */
export function createMetrics(storage: RelayStorage, openConnections: () => number = () => 0) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    httpDuration: new Histogram({
      name: 'parley_relay_http_request_duration_seconds',
      help: 'HTTP request duration by route pattern, method and status code',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
    fanoutsStored: new Counter({
      name: 'parley_relay_fanouts_stored_total',
      help: 'Group fan-outs newly stored: one payload each, referenced from every recipient mailbox',
      registers: r,
    }),
    envelopesAccepted: new Counter({
      name: 'parley_relay_envelopes_accepted_total',
      help: 'Envelopes newly stored',
      registers: r,
    }),
    envelopeBytesAccepted: new Counter({
      name: 'parley_relay_envelope_bytes_accepted_total',
      help: 'Bytes of envelopes newly stored',
      registers: r,
    }),
    envelopesDuplicate: new Counter({
      name: 'parley_relay_envelopes_duplicate_total',
      help: 'Envelopes whose client id was already accepted (retries)',
      registers: r,
    }),
    sendsRejected: new Counter({
      name: 'parley_relay_sends_rejected_total',
      help: 'Sends refused, by error code',
      labelNames: ['code'] as const,
      registers: r,
    }),
    envelopesPushed: new Counter({
      name: 'parley_relay_envelopes_pushed_total',
      help: 'Envelopes pushed on websockets (including redeliveries)',
      registers: r,
    }),
    envelopesPushedLive: new Counter({
      name: 'parley_relay_envelopes_pushed_live_total',
      help: 'Envelopes pushed from the rows of the commit that stored them, without a mailbox read (spec 09 §5.2.1)',
      registers: r,
    }),
    mailboxReads: new Counter({
      name: 'parley_relay_mailbox_reads_total',
      help: 'Mailbox reads by websocket pumps (backlog, and live envelopes they could not take from their commit)',
      registers: r,
    }),
    envelopesAcked: new Counter({
      name: 'parley_relay_envelopes_acked_total',
      help: 'Envelopes deleted on acknowledgement',
      registers: r,
    }),
    websockets: new Gauge({
      name: 'parley_relay_websocket_connections',
      help: 'Authenticated websocket connections',
      registers: r,
    }),
    // Observed on the delivery loop, once per group commit: a LoopHistogram (metrics-histogram.ts).
    commitBatchSize: new LoopHistogram({
      name: 'parley_relay_commit_batch_writes',
      help: 'Writes per group commit',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: r,
    }),
    commitDuration: new LoopHistogram({
      name: 'parley_relay_commit_duration_seconds',
      help: 'Duration of one group commit (execution and fsync)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: r,
    }),
    // Where a commit's time goes (issue 15's latency breakdown): queued, statements, durable.
    commitPhase: new LoopHistogram({
      name: 'parley_relay_commit_phase_seconds',
      help: "One group commit's phases: wait (oldest write queued before the transaction), transaction (statements and commit), sync (commit to fsync seen done)",
      labelName: 'phase',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: r,
    }),
    // Once per pushed envelope: a LoopHistogram too.
    pushDelay: new LoopHistogram({
      name: 'parley_relay_push_delay_seconds',
      help: 'Acceptance of an envelope to its push on a connected websocket (envelopes that arrive while the device is connected)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: r,
    }),
    preKeysHandedOut: new Counter({
      name: 'parley_relay_prekeys_handed_out_total',
      help: 'Bundle parts handed out, by kind (one_time, kem_one_time, kem_last_resort, no_one_time)',
      labelNames: ['kind'] as const,
      registers: r,
    }),
    bundlesServed: new Counter({
      name: 'parley_relay_bundles_served_total',
      help: 'Prekey bundles served, by route (v1, v2) and bundle version (1, 2): how many peers still fetch or publish v1 only',
      labelNames: ['route', 'version'] as const,
      registers: r,
    }),
    authFailures: new Counter({
      name: 'parley_relay_auth_failures_total',
      help: 'Authentication failures by code',
      labelNames: ['code'] as const,
      registers: r,
    }),
    rateLimited: new Counter({
      name: 'parley_relay_rate_limited_total',
      help: 'Requests refused or degraded by a rate limit, by limit',
      labelNames: ['limit'] as const,
      registers: r,
    }),
    connectionsShed: new Counter({
      name: 'parley_relay_connections_shed_total',
      help: 'Connections closed at a connection cap: evicted (an older unauthenticated one made room) or refused, by cap (address, total)',
      labelNames: ['event', 'cap'] as const,
      registers: r,
    }),
    connectionsOpen: new Gauge({
      name: 'parley_relay_connections_open',
      help: 'Open TCP connections (HTTP and websocket)',
      registers: r,
      collect() {
        this.set(openConnections());
      },
    }),
    websocketClientErrors: new Counter({
      name: 'parley_relay_websocket_client_errors_total',
      help: 'Websockets closed on a client-caused error (oversized or malformed frame, reset), by code',
      labelNames: ['code'] as const,
      registers: r,
    }),
    websocketAckPauses: new Counter({
      name: 'parley_relay_websocket_ack_pauses_total',
      help: 'Times a websocket stopped being read because a full batch of acknowledgements waited for the delete being written',
      registers: r,
    }),
    deviceDirectory: new Counter({
      name: 'parley_relay_device_directory_total',
      help: 'Device removals (removed, gone: a repeat or replay, not_found) and signed device list uploads (stored, unchanged, outdated, conflict)',
      labelNames: ['op', 'outcome'] as const,
      registers: r,
    }),
    swept: new Counter({
      name: 'parley_relay_swept_total',
      help: 'Expired items deleted by the sweeper, by kind',
      labelNames: ['kind'] as const,
      registers: r,
    }),
    reports: new Counter({
      name: 'parley_relay_reports_total',
      help: 'Abuse reports by outcome: queued, or the refusal code (spec/14-franking.md §7)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    attachmentBytesReceived: new Counter({
      name: 'parley_relay_attachment_bytes_received_total',
      help: 'Attachment bytes written to disk',
      registers: r,
    }),
    storage: new Gauge({
      name: 'parley_relay_storage',
      help: 'Stored items: devices, queued_messages, queued_bytes, attachments, fanout_payloads',
      labelNames: ['kind'] as const,
      registers: r,
      async collect() {
        const s = await storage.stats();
        this.set({ kind: 'devices' }, s.devices);
        this.set({ kind: 'queued_messages' }, s.queuedMessages);
        this.set({ kind: 'queued_bytes' }, s.queuedBytes);
        this.set({ kind: 'attachments' }, s.attachments);
        this.set({ kind: 'fanout_payloads' }, s.payloads);
      },
    }),
  };
}

/**
 * Before/after for issue 15 in one session: alternates load runs of another
 * checkout's relay (the "before", HTTP sends) and this checkout's relay (HTTP
 * sends, and websocket sends unbatched and batched), round after round, and
 * prints the median of each figure over the rounds. Alternating matters on a
 * shared machine: the load from other work changes by the minute, and each
 * round sees about the same.
 *
 *   node --import tsx bench/src/relay/before-after.ts --base <checkout>/packages/relay/src/main.ts [--rounds 3] [--duration 6]
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type RelayLoadOptions, type RelayLoadResult, runRelayLoad } from './load.ts';

interface Config {
  readonly name: string;
  readonly options: RelayLoadOptions;
}

/** The middle value, or the mean of the two middle values for an even count. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function row(name: string, runs: RelayLoadResult[], loads: number[]): string {
  const m = (f: (r: RelayLoadResult) => number) => Math.round(median(runs.map(f)) * 10) / 10;
  return [
    name,
    m((r) => r.envelopesPerSecond),
    `${m((r) => r.deliveryAtFullRateMs.median)} / ${m((r) => r.deliveryAtFullRateMs.p99)}`,
    m((r) => r.halfRate.achieved),
    `${m((r) => r.deliveryLatencyMs.median)} / ${m((r) => r.deliveryLatencyMs.p99)}`,
    m((r) => r.relay.meanWritesPerCommit),
    m((r) => r.relay.cpuPerEnvelopeUs),
    runs.map((r) => r.envelopesPerSecond).join(', '),
    loads.map((l) => l.toFixed(1)).join(', '),
  ].join(' | ');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      base: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      'half-seconds': { type: 'string' },
      only: { type: 'string' },
    },
  });
  const durationSeconds = Number(values.duration ?? 6);
  const halfRateSeconds = Number(values['half-seconds'] ?? 4);
  const common = { durationSeconds, halfRateSeconds };
  const configs: Config[] = [
    ...(values.base ? [{ name: 'before: HTTP', options: { ...common, mode: 'http', relayMain: values.base } } as Config] : []),
    { name: 'after: HTTP', options: { ...common, mode: 'http' as const } },
    { name: 'after: websocket, 1 per frame', options: { ...common, mode: 'ws' as const, batch: 1, window: 8 } },
    { name: 'after: websocket, 8 per frame', options: { ...common, mode: 'ws' as const, batch: 8, window: 4 } },
  ].filter((c) => !values.only || values.only.split(',').some((o) => c.name.includes(o)));
  const results = new Map<string, RelayLoadResult[]>(configs.map((c) => [c.name, []]));
  const loads = new Map<string, number[]>(configs.map((c) => [c.name, []]));
  const rounds = Number(values.rounds ?? 3);
  for (let round = 1; round <= rounds; round++) {
    for (const c of configs) {
      const load = loadavg()[0] ?? Number.NaN;
      const r = await runRelayLoad(c.options);
      results.get(c.name)?.push(r);
      loads.get(c.name)?.push(load);
      console.error(
        `round ${round}, ${c.name}: ${r.envelopesPerSecond}/s, half rate p99 ${r.deliveryLatencyMs.p99} ms, load ${load.toFixed(1)}`,
      );
    }
  }
  console.log(
    `Medians of ${rounds} alternating rounds (${durationSeconds} s full rate, ${halfRateSeconds} s half rate), 1 KiB envelopes, durable before answered.\n`,
  );
  console.log(
    '| relay and sends | envelopes/s | delivery at full rate, median / p99 ms | half rate achieved /s | delivery at half rate, median / p99 ms | writes per commit | relay CPU µs per envelope | each round /s | load average at each start |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |');
  for (const c of configs) console.log(`| ${row(c.name, results.get(c.name) ?? [], loads.get(c.name) ?? [])} |`);
}

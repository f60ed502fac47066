/**
 * Where the relay's CPU goes per accepted envelope (issue 15: "profile
 * first"). Runs the load script's throughput phase against a relay process
 * started under `node --cpu-prof`, then sorts every sample of that profile
 * into one cost class (signature verification, hashing, JSON, base64,
 * schema validation, SQLite, websocket, HTTP/fastify, ...) and prints
 * microseconds of relay CPU per accepted envelope for each.
 *
 *   node --import tsx bench/src/relay/profile.ts [--duration 8] [--mode http|ws] [--out bench/results/relay-profile-after.md]
 *
 * A sample is classed by the first frame, walking from the sampled (leaf)
 * function towards the root, that matches a rule below: a native
 * `verify` called from the crypto backend is "Ed25519 verify", a native
 * statement `run` under storage/sqlite.ts is "SQLite". The whole profile is
 * counted (registration and the latency phase too), so the per-envelope
 * figures are an upper bound for the send path alone; the throughput phase
 * dominates the run.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type RelayLoadResult, type SendMode, formatTable, runRelayLoad } from './load.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

type Rule = readonly [klass: string, test: (name: string, url: string) => boolean];

/** Ordered: the first rule a frame matches names its class. */
const RULES: readonly Rule[] = [
  ['idle', (n) => n === '(idle)'],
  ['garbage collection', (n) => n === '(garbage collector)'],
  ['Ed25519 verify', (n, u) => /ed25519Verify|^verify$/.test(n) && (u === '' || u.includes('crypto'))],
  ['SHA-256', (n, u) => /sha256|digest|createHash/i.test(n) && (u === '' || u.includes('crypto') || u.includes('body-digest'))],
  ['SQLite (statements, commit, fsync)', (_n, u) => /better-sqlite3|storage\/sqlite|write-batcher/.test(u)],
  ['storage checks (device list, quotas)', (_n, u) => /storage\/(send-checks|device-lists)/.test(u)],
  ['replay record', (_n, u) => u.includes('replay-cache')],
  ['schema validation', (n, u) => /ajv|typebox|fast-uri/.test(u) || /^validate\d*$/.test(n)],
  ['JSON parse/stringify', (n, u) => /^(parse|stringify)$/.test(n) || /secure-json-parse|fast-json-stringify/.test(u)],
  ['base64', (n, u) => /base64/i.test(n) || u.endsWith('encoding.ts')],
  ['CBOR (frames, signed bytes)', (_n, u) => /cbor-x|codec\/cbor/.test(u)],
  ['websocket (ws frames, masking, writes)', (_n, u) => /node_modules\/ws\/|bufferutil|routes\/websocket|delivery\//.test(u)],
  ['auth (header parsing, signed bytes)', (_n, u) => /relay\/src\/auth/.test(u)],
  ['send handler (routes/messages, limits)', (_n, u) => /routes\/messages|limits\//.test(u)],
  [
    'HTTP + fastify (parsing, routing, hooks, replies)',
    (_n, u) => /fastify|find-my-way|avvio|light-my-request|pino|node:_http|node:http|front-door|relay\/src\/app/.test(u),
  ],
  ['sockets and streams (node:net, streams)', (_n, u) => /node:net|node:internal\/stream|node:stream|node:internal\/streams/.test(u)],
  ['metrics', (_n, u) => /prom-client|relay\/src\/metrics/.test(u)],
  ['native / V8 (program)', (n) => n === '(program)'],
];

export interface ProfileRow {
  readonly klass: string;
  readonly ms: number;
  readonly usPerEnvelope: number;
  readonly share: number;
}

export function classify(profile: CpuProfile): Map<string, number> {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const klassOf = new Map<number, string>();
  const resolve = (id: number): string => {
    const cached = klassOf.get(id);
    if (cached) return cached;
    let cur: number | undefined = id;
    let found = 'other JavaScript';
    while (cur !== undefined) {
      const f = (byId.get(cur) as ProfileNode).callFrame;
      const rule = RULES.find(([, test]) => test(f.functionName, f.url));
      if (rule) {
        found = rule[0];
        break;
      }
      cur = parent.get(cur);
    }
    klassOf.set(id, found);
    return found;
  };
  const micros = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const k = resolve(id);
    micros.set(k, (micros.get(k) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return micros;
}

/** The functions with the most self time (where the samples landed), for a closer look than the classes. */
export function topFunctions(profile: CpuProfile, n: number): { name: string; ms: number }[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const f = (byId.get(id) as ProfileNode).callFrame;
    if (f.functionName === '(idle)') return;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules|packages)\//, '$1/')}:${f.lineNumber + 1}` : '(native)';
    const name = `${f.functionName || '(anonymous)'} ${where}`;
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000 }));
}

export function profileRows(profile: CpuProfile, envelopes: number): ProfileRow[] {
  const micros = classify(profile);
  micros.delete('idle');
  const busy = [...micros.values()].reduce((a, b) => a + b, 0);
  return [...micros.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([klass, us]) => ({ klass, ms: us / 1000, usPerEnvelope: us / envelopes, share: us / busy }));
}

export function markdown(
  rows: readonly ProfileRow[],
  top: readonly { name: string; ms: number }[],
  r: RelayLoadResult,
  title: string,
  command: string,
): string {
  const busyMs = rows.reduce((a, x) => a + x.ms, 0);
  const lines = [
    `# ${title}`,
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${command}\`.`,
    '',
    '```',
    formatTable(r),
    '```',
    '',
    `Relay CPU over the whole profile (registration, throughput and latency phases): ${Math.round(busyMs)} ms busy; ` +
      `${r.accepted + r.deliveryLatencyMs.samples} envelopes accepted, so ${Math.round((busyMs * 1000) / (r.accepted + r.deliveryLatencyMs.samples))} µs of relay CPU per envelope.`,
    '',
    '| cost class | ms | µs per envelope | share |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map((x) => `| ${x.klass} | ${Math.round(x.ms)} | ${x.usPerEnvelope.toFixed(1)} | ${(x.share * 100).toFixed(1)}% |`),
    '',
    'Functions with the most self time:',
    '',
    '| function | ms |',
    '| --- | ---: |',
    ...top.map((t) => `| \`${t.name}\` | ${Math.round(t.ms)} |`),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      mode: { type: 'string' },
      batch: { type: 'string' },
      'relay-main': { type: 'string' },
      out: { type: 'string' },
      title: { type: 'string' },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'parley-relay-prof-'));
  try {
    const r = await runRelayLoad({
      durationSeconds: Number(values.duration ?? 8),
      ...(values.connections ? { connections: Number(values.connections) } : {}),
      ...(values.mode ? { mode: values.mode as SendMode } : {}),
      ...(values.batch ? { batch: Number(values.batch) } : {}),
      ...(values['relay-main'] ? { relayMain: values['relay-main'] } : {}),
      profileDir: dir,
    });
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('the relay wrote no CPU profile');
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const envelopes = r.accepted + r.deliveryLatencyMs.samples;
    const command = `node --import tsx bench/src/relay/profile.ts ${process.argv.slice(2).join(' ')}`.trim();
    const text = markdown(profileRows(profile, envelopes), topFunctions(profile, 20), r, values.title ?? 'Relay CPU profile', command);
    if (values.out) writeFileSync(values.out, text);
    console.log(text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

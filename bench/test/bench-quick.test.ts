/**
 * Runs the quick benchmark set in-process (what CI runs) and checks the
 * results' shape: every expected row present, nothing failed, every
 * measured figure finite and positive with min ≤ median ≤ max, and the
 * report files written. No timing assertions: figures depend on the machine.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILES, renderConsole, writeReport } from '../src/report.ts';
import { type RunReport, SECTIONS } from '../src/results.ts';
import { runSuite } from '../src/suite.ts';

const ONE_TO_ONE = [
  'setup',
  'same-direction-100',
  'same-direction-1024',
  'ping-pong',
  'skipped-1000',
  'late-of-1000',
  'serialize',
  'deserialize',
];
const FLOOR_COMPOSITES = ['setup', 'same-direction-100', 'same-direction-1024', 'ping-pong', 'skipped-1000'];
const FLOOR_PRIMITIVES = ['prim-chain-step', 'prim-aead-100', 'prim-cbor', 'prim-x25519', 'prim-ed25519-verify', 'prim-mlkem-encaps'];

const EXPECTED_MEASURED = [
  ...['node', 'noble'].flatMap((b) => ONE_TO_ONE.map((op) => `parley/${b}/${op}`)),
  ...['node', 'noble'].flatMap((b) => [...FLOOR_COMPOSITES, ...FLOOR_PRIMITIVES].map((op) => `floor/${b}/${op}`)),
  ...['setup', 'same-direction-100', 'same-direction-1024', 'ping-pong', 'group-message'].map((op) => `olm/${op}`),
  ...['setup', 'same-direction-100', 'same-direction-1024', 'ping-pong', 'group-message'].map((op) => `libsignal-client/${op}`),
  ...['setup', 'same-direction-100', 'same-direction-1024', 'ping-pong'].map((op) => `privacyresearch/${op}`),
  ...['group-message', 'group-add-sender', 'group-add-member', 'group-add-joiner', 'group-remove-sender', 'group-remove-member'].map(
    (op) => `ts-mls/${op}@10`,
  ),
];

const PARLEY_GROUP_OPS = [
  'group-message',
  'group-add-sender',
  'group-add-member',
  'group-add-joiner',
  'group-remove-sender',
  'group-remove-member',
  'group-rotate-sender',
];
EXPECTED_MEASURED.push(
  ...[10, 100].flatMap((n) => [...PARLEY_GROUP_OPS.map((op) => `parley/node/${op}@${n}`), `parley/noble/group-message@${n}`]),
);

EXPECTED_MEASURED.push(
  'relay/relay-envelopes',
  'relay/relay-latency-p50',
  'relay/relay-latency-p99',
  'relay/relay-envelopes-ws',
  'relay/relay-latency-ws-p50',
  'relay/relay-latency-ws-p99',
  'relay/relay-websockets',
);
// Issue 15: one group message per device and as one fan-out stored once (relay/fanout.ts).
EXPECTED_MEASURED.push(
  ...['perDevice', 'fanout'].flatMap((way) => ['upload', 'stored', 'time'].map((what) => `relay/relay-group-${way}-${what}`)),
);

// Issues 16, 17, 19 (formats-v2 §15 step 13): ratchet v2 next to v1 and libsignal-client, forged
// headers, Reed-Solomon, sealed sender 1:1 and group, franking, report verification, relay franks.
EXPECTED_MEASURED.push(
  ...['node', 'noble'].flatMap((b) =>
    [
      'v2-ping-pong',
      'v2-same-direction-100',
      'v2-forged-header-current',
      'v2-forged-header-full',
      'sealed-1to1-unsealed',
      'sealed-1to1-sealed',
      'sealed-open-forged',
      ...['send', 'open'].flatMap((way) => ['unsealed', 'sealed'].map((how) => `sealed-group-${way}-${how}@100`)),
      'franking-tag-1to1',
      'franking-group-v1',
      'franking-group-v2',
      'report-verify-1',
      'report-verify-11',
    ].map((op) => `parley/${b}/${op}`),
  ),
  'parley/v2-rs-decode-ek',
  'parley/v2-rs-decode-ct',
  'relay/relay-frank@1000',
  ...['ping-pong', 'same-direction'].flatMap((k) => [`parley/bytes-${k}-v1`, `parley/bytes-${k}-v2`, `libsignal-client/bytes-${k}`]),
  'parley/bytes-franking-1to1',
  'parley/bytes-franking-group',
);

/** Rows that must be present, measured or marked not measured with a reason. */
const EXPECTED_PRESENT = [...EXPECTED_MEASURED];

let report: RunReport;
const progress: string[] = [];

beforeAll(async () => {
  report = await runSuite({ quick: true, sections: SECTIONS, log: (line) => progress.push(line) });
}, 180_000);

describe('quick benchmark set', () => {
  it('has every expected row, and no failed one', () => {
    const ids = new Set(report.results.map((r) => r.id));
    for (const id of EXPECTED_PRESENT) expect(ids, id).toContain(id);
    const failed = report.results.filter((r) => r.status === 'failed').map((r) => `${r.id}: ${r.reason}`);
    expect(failed).toEqual([]);
    for (const id of EXPECTED_MEASURED) expect(report.results.find((r) => r.id === id)?.status, id).toBe('measured');
  });

  it('reports finite, positive, ordered figures for every measured row', () => {
    for (const r of report.results.filter((x) => x.status === 'measured')) {
      for (const v of [r.median, r.min, r.max]) {
        expect(Number.isFinite(v), r.id).toBe(true);
        expect(v as number, r.id).toBeGreaterThan(0);
      }
      expect(r.min as number, r.id).toBeLessThanOrEqual(r.median as number);
      expect(r.median as number, r.id).toBeLessThanOrEqual(r.max as number);
      expect(r.samples as number, r.id).toBeGreaterThanOrEqual(1);
    }
  });

  it('counts websocket connections up to the quick cap and leaves no process behind', () => {
    const ws = report.results.find((r) => r.id === 'relay/relay-websockets');
    expect(ws?.median).toBe(300);
    expect(ws?.note).toMatch(/300 reached "ready"/);
    const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
    expect(children.split('\n').filter((line) => /host\.ts|ws-clients\.ts/.test(line))).toEqual([]);
  });

  it('gives a reason for every row that is not measured', () => {
    for (const r of report.results.filter((x) => x.status === 'not-measured')) expect(r.reason, r.id).toMatch(/\S/);
  });

  it('splits Parley operations into primitive calls on both backends', () => {
    for (const backend of ['node', 'noble']) {
      for (const op of ['setup', 'same-direction-100', 'ping-pong', 'skipped-1000', 'group-message@10']) {
        const b = report.breakdowns.find((x) => x.op === op && x.backend === backend);
        expect(b, `${op} ${backend}`).toBeDefined();
        if (!b) continue;
        const inPrimitives = Object.values(b.families).reduce((x, y) => x + y, 0);
        expect(b.totalMicros).toBeGreaterThan(0);
        expect(inPrimitives + b.protocolMicros).toBeCloseTo(Math.max(b.totalMicros, inPrimitives), 3);
      }
    }
    // Ratchet v2 is split too: its ping-pong runs ML-KEM (the PQ ratchet's exchanges) inside the sampled messages.
    const v2 = report.breakdowns.find((x) => x.op === 'v2-ping-pong' && x.backend === 'node');
    expect(v2?.methods['mlkemKeygen']?.calls).toBeGreaterThan(0);
    expect(v2?.methods['mlkemDecapsulate']?.calls).toBeGreaterThan(0);
    // A group message is signed by its sender and verified by its reader: the one-to-one ops never sign.
    const group = report.breakdowns.find((x) => x.op === 'group-message@10' && x.backend === 'node');
    expect(group?.methods['ed25519Sign']?.calls).toBe(1);
    expect(group?.methods['ed25519Verify']?.calls).toBe(1);
  });

  it('printed one progress line per result', () => {
    expect(progress.length).toBeGreaterThanOrEqual(report.results.length);
  });

  describe('report files', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'parley-bench-'));
      await writeReport(report, dir);
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('writes JSON that reads back as the same report', async () => {
      const json = JSON.parse(await readFile(join(dir, FILES.json), 'utf8')) as RunReport;
      expect(json.results.length).toBe(report.results.length);
      expect(json.profile).toBe('quick');
    });

    it('writes a Markdown comparison with peers and targets', async () => {
      const md = await readFile(join(dir, FILES.markdown), 'utf8');
      expect(md).toContain(
        '| Operation | Parley (node) | Parley (noble) | Floor (node) | olm | libsignal-client | privacyresearch | ts-mls |',
      );
      expect(md).toContain('## Targets');
      expect(md).toMatch(/\| Ping-pong message \(DH ratchet step\) \| [\d.]+ (µs|ms) \|/);
      expect(md).toContain('## Formats v2: ratchet v2, sealed sender, franking (issues 16, 17, 19)');
      expect(md).toMatch(/\| Ping-pong message, 100 B \| [\d.]+ (µs|ms) \| [\d.]+ (µs|ms) \|/);
      expect(md).toMatch(/\| ratchet v2 adds under 150 B per message on average, ping-pong \(100 B\) \| \+[\d.]+ B \|/);
    });

    it('writes an SVG chart with a line per library', async () => {
      const svg = await readFile(join(dir, FILES.chart), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('libsignal sender keys');
      expect(svg).toContain('ts-mls');
    });

    it('prints the same comparison for the terminal', () => {
      expect(renderConsole(report)).toContain('Session setup');
    });
  });
});

describe('command line', () => {
  it('refuses an unknown section with usage and exit code 2', () => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', 'bench/src/main.ts', '--only', 'nope'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out.status).toBe(2);
    expect(out.stderr).toContain('unknown section "nope"');
  });
});

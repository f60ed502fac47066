/**
 * The report: the comparison table for the terminal, and the files under
 * bench/results/ (results.json, results.md, group-chart.svg). Issue 5
 * ("prints a comparison table and writes results (JSON plus a Markdown
 * table, and an SVG ... chart)").
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderGroupChart } from './chart.ts';
import { type Cell, type ComparisonRow, PEERS, checkTargets, comparisonRows } from './compare.ts';
import { V2_BYTE_BUDGET, checkByteTargets, ratchetRows, v2Pairs } from './compare-v2.ts';
import { FAMILIES, type Result, type RunReport } from './results.ts';
import { formatValue } from './runner.ts';

export const FILES = { json: 'results.json', markdown: 'results.md', chart: 'group-chart.svg' } as const;

/** What is not like for like, per library; printed under every table. */
export const CAVEATS: readonly string[] = [
  'Parley: PQXDH with ML-KEM-768 (noble ML-KEM on both backends: Node 20 has none), plaintext padded inside the AEAD (100 B → 160 B), every message CBOR-framed and strictly decoded, decrypt as a transaction on a copied state.',
  'libsignal-client: native Rust; every session is PQXDH with ML-KEM-1024, and every message also carries its SPQR post-quantum ratchet, which has no public switch to turn off (its ping-pong figure includes it). Four async store round trips per message, with in-memory stores (the cheapest possible).',
  'olm: libolm 3.2.16 in WebAssembly; 3DH with no post-quantum KEM and no padding; string API (base64 ciphertexts). Megolm messages are Ed25519-signed.',
  'privacyresearch: X3DH with no post-quantum KEM; asm.js curve25519 and async WebCrypto for HMAC/AES/SHA; one operation per sample (it is slow).',
  "ts-mls: MLS (RFC 9420), ciphersuite 1 (X25519, AES-128-GCM, Ed25519) on WebCrypto. Its group was built by one commit adding N-1 members, so parent nodes are blank and each commit encrypts to ~N leaves (MLS's worst case; a group where everyone has committed pays ~log2 N).",
  "Parley groups: sender keys. A membership change costs one one-to-one encryption per recipient device (on removal every remaining member re-keys: O(N) each, O(N²) for the group), not an MLS tree update; it gives newcomers no history, but unlike an MLS commit it does not heal the other members' keys after a compromise. One-to-one sessions with every member are assumed (set up untimed). Group messages do not rotate inside the timed loop; rotation (every 1,000 messages by default) has its own row.",
  'Floor: the same primitive calls as the Parley operation through the same backend, without state copies, validation, records or error handling.',
];

/** A ratio with two significant digits below 0.1 (so 1/300 reads 0.0033×, not 0.00×). */
export function formatRatio(r: number): string {
  if (r >= 10) return `${r.toFixed(1)}×`;
  if (r >= 0.1) return `${r.toFixed(2)}×`;
  return `${r.toPrecision(2)}×`;
}

const ratioText = (r: number | null) => (r === null ? '' : ` (${formatRatio(r)})`);

function cellText(c: Cell | undefined, withRatio: boolean): string {
  if (!c?.result) return '—';
  const r = c.result;
  if (r.status !== 'measured') return r.status === 'failed' ? 'failed' : 'not measured';
  return `${formatValue(r.median, r.unit)}${withRatio ? ratioText(c.ratio) : ''}`;
}

function bestText(row: ComparisonRow): string {
  if (!row.bestPeer) return '—';
  return `${formatRatio(row.bestPeer.ratio)} ${row.bestPeer.subject}`;
}

function comparisonTable(results: readonly Result[]): string[][] {
  const header = ['Operation', 'Parley (node)', 'Parley (noble)', 'Floor (node)', ...PEERS, 'vs best peer'];
  const rows = comparisonRows(results).map((row) => [
    row.label,
    cellText(row.parleyNode, false),
    cellText(row.parleyNoble, false),
    cellText(row.floorNode, true),
    ...PEERS.map((p) => cellText(row.peers[p], true)),
    bestText(row),
  ]);
  return [header, ...rows];
}

function targetTable(results: readonly Result[]): string[][] {
  const rows = checkTargets(results).map((t) => [
    t.target,
    t.ratio === null ? '—' : formatRatio(t.ratio),
    `${t.strict ? '<' : '≤'} ${t.maxRatio}`,
    t.met === null ? 'not measured' : t.met ? 'met' : 'NOT MET',
  ]);
  const bytes = checkByteTargets(results).map((t) => [
    t.target,
    t.added === null ? '—' : `+${formatValue(t.added, 'bytes')}`,
    `< +${t.limit} B`,
    t.met === null ? 'not measured' : t.met ? 'met' : 'NOT MET',
  ]);
  return [['Target', 'Parley (node) ÷ peer', 'needed', 'status'], ...rows, ...bytes];
}

const us = (v: number | null) => formatValue(v, 'us');
const bytesText = (v: number | null) => formatValue(v, 'bytes');
const signed = (v: number) => `${v < 0 ? '−' : '+'}${us(Math.abs(v))}`;
const ratioOrDash = (r: number | null) => (r === null ? '—' : formatRatio(r));

/** Ratchet v2 against v1 and libsignal-client: time and bytes per message (issue 17). */
function ratchetV2Table(results: readonly Result[]): string[][] {
  const rows = ratchetRows(results).map((r) => [
    r.label,
    us(r.v1),
    us(r.v2),
    us(r.v2Noble),
    us(r.libsignal),
    ratioOrDash(r.v2VsLibsignal),
    ratioOrDash(r.v2VsV1),
    bytesText(r.bytesV1),
    bytesText(r.bytesV2),
    bytesText(r.bytesLibsignal),
    r.bytesV1 !== null && r.bytesV2 !== null ? `+${bytesText(r.bytesV2 - r.bytesV1)}` : '—',
  ]);
  if (rows.length === 0) return [];
  return [
    [
      'Operation',
      'v1 (node)',
      'v2 (node)',
      'v2 (noble)',
      'libsignal-client',
      'v2 ÷ libsignal',
      'v2 ÷ v1',
      'bytes v1',
      'bytes v2',
      'bytes libsignal',
      'v2 − v1',
    ],
    ...rows,
  ];
}

/** The section's other rows, each with the figure it is read against. */
function v2OtherTable(results: readonly Result[]): string[][] {
  const cellOf = (r: Result | null) => (r === null ? '—' : r.status === 'measured' ? formatValue(r.median, r.unit) : r.status);
  const rows = v2Pairs(results).map((p) => {
    const added =
      p.reference && p.node && p.reference.median !== null && p.node.median !== null
        ? `${signed(p.node.median - p.reference.median)} (${formatRatio(p.node.median / p.reference.median)} ${p.referenceName ?? 'the reference'})`
        : '';
    return [p.label, cellOf(p.node), cellOf(p.noble), added, p.note];
  });
  const sizes = results
    .filter((r) => r.section === 'v2' && r.unit === 'bytes' && r.op.startsWith('bytes-franking'))
    .map((r) => [r.label, cellOf(r), '', '', r.note ?? '']);
  const all = [...rows, ...sizes];
  return all.length === 0 ? [] : [['Operation', 'node', 'noble', 'added over the unsealed / unfranked row (node)', 'note'], ...all];
}

function otherUnitTable(results: readonly Result[]): string[][] {
  const rows = results
    .filter((r) => r.section === 'relay')
    .map((r) => [r.label, r.status === 'measured' ? formatValue(r.median, r.unit) : r.status, r.note ?? r.reason ?? '']);
  return rows.length > 0 ? [['Relay (SQLite, loopback)', 'value', 'note'], ...rows] : [];
}

function breakdownTable(report: RunReport): string[][] {
  if (report.breakdowns.length === 0) return [];
  const share = (us: number, total: number) => (us <= 0 ? '' : `${formatValue(us, 'us')} (${Math.round((us / total) * 100)}%)`);
  const rows = report.breakdowns.map((b) => [
    b.label,
    b.backend,
    formatValue(b.totalMicros, 'us'),
    share(b.protocolMicros, b.totalMicros),
    ...FAMILIES.map((f) => share(b.families[f], b.totalMicros)),
  ]);
  return [['Operation', 'Backend', 'Total (instrumented)', 'Protocol code', ...FAMILIES], ...rows];
}

function detailTable(results: readonly Result[]): string[][] {
  const rows = results.map((r) => [
    r.subject,
    r.variant ?? '',
    r.label,
    r.status === 'measured' ? formatValue(r.median, r.unit) : r.status,
    formatValue(r.min, r.unit),
    formatValue(r.max, r.unit),
    formatValue(r.wallMedian, r.unit),
    r.samples === null ? '' : r.iterations === null ? `${r.samples}` : `${r.samples} × ${r.iterations}`,
    r.status === 'measured' ? (r.note ?? '') : (r.reason ?? ''),
  ]);
  return [['Subject', 'Backend', 'Operation', 'Median (CPU)', 'Min', 'Max', 'Median (wall)', 'Samples × iterations', 'Note'], ...rows];
}

function markdownTable(rows: string[][]): string {
  if (rows.length === 0) return '';
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const [header, ...body] = rows as [string[], ...string[][]];
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...body.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

function textTable(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [line(rows[0] as string[]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

function machineLine(r: RunReport): string {
  const m = r.machine;
  return `profile ${r.profile}, ${m.node} on ${m.platform}/${m.arch}, ${m.cpus} × ${m.cpuModel.trim()}, load ${m.loadAverage.join(' ')}, started ${r.startedAt}, took ${r.durationSeconds} s`;
}

export function renderConsole(report: RunReport): string {
  const parts = [
    `Parley benchmarks (${machineLine(report)})`,
    'Medians of CPU time per operation. Ratios in parentheses = Parley (node) ÷ that figure: below 1 means Parley is faster.',
    '',
    textTable(comparisonTable(report.results)),
    '',
    textTable(targetTable(report.results)),
  ];
  const other = otherUnitTable(report.results);
  if (other.length > 0) parts.push('', textTable(other));
  const breakdown = breakdownTable(report);
  if (breakdown.length > 0) parts.push('', 'Where Parley spends the time (instrumented backend):', textTable(breakdown));
  const problems = report.results.filter((r) => r.status !== 'measured');
  if (problems.length > 0) parts.push('', ...problems.map((r) => `${r.status}: ${r.id}: ${r.reason}`));
  return parts.join('\n');
}

function v2Markdown(results: readonly Result[]): string[] {
  const ratchet = ratchetV2Table(results);
  const rest = v2OtherTable(results);
  if (ratchet.length === 0 && rest.length === 0) return [];
  return [
    '## Formats v2: ratchet v2, sealed sender, franking (issues 16, 17, 19)',
    '',
    `Ratchet v2 runs on a session from the v2 handshake, with encrypted headers and its post-quantum ratchet (ML-KEM-768 exchanges in Reed-Solomon chunks); each v2 ping-pong sample holds at least 100 messages, so whole ML-KEM exchanges are in it, and libsignal-client's (SPQR) likewise. v1, v2 and libsignal-client were sampled interleaved. Bytes are the mean over consecutive messages of a fresh session (several whole PQ exchanges); v2 messages also carry a 32 B franking tag beside them, not counted here (see the franking rows). Budget: under +${V2_BYTE_BUDGET} B per message (issue 17).`,
    '',
    markdownTable(ratchet),
    '',
    markdownTable(rest),
    '',
  ];
}

export function renderMarkdown(report: RunReport): string {
  const other = otherUnitTable(report.results);
  return [
    '# Parley benchmark results',
    '',
    `Generated by \`npm run bench${report.profile === 'quick' ? ' -- --quick' : ''}\` (${machineLine(report)}).`,
    ...(report.kept
      ? [
          '',
          `Sections measured in this run: ${report.sections.join(', ')}. Carried over unchanged from the ${report.kept.profile} run started ${report.kept.startedAt} (\`--keep\`): ${report.kept.sections.join(', ')}.`,
        ]
      : []),
    '',
    'Each figure is the median over samples taken after warm-up; each sample times a batch of operations and counts their mean.',
    "Times are CPU time (user + system) per operation: on this machine, shared with other engineers' jobs, the wall clock also counts the time the process waited for a core. Wall-clock medians are in the detail table.",
    'Compared figures (Parley, the floor, olm, libsignal-client, privacyresearch) were sampled interleaved, one sample of each in turn.',
    'Ratios in parentheses are Parley (node) ÷ that column, from the same run: below 1 means Parley is faster.',
    'Min and max for every figure are in the detail table below.',
    '',
    '## Comparison',
    '',
    markdownTable(comparisonTable(report.results)),
    '',
    '## Targets',
    '',
    markdownTable(targetTable(report.results)),
    '',
    ...(other.length > 0 ? ['## Relay', '', markdownTable(other), ''] : []),
    ...v2Markdown(report.results),
    ...(report.breakdowns.length > 0
      ? [
          '## Where Parley spends the time',
          '',
          'Each operation run on an instrumented copy of the backend that times every primitive call. "Protocol code" is the rest: CBOR, validation, state copies, padding, allocation. The timer reads add a little to the totals; read the shares.',
          '',
          markdownTable(breakdownTable(report)),
          '',
        ]
      : []),
    '## Not like for like',
    '',
    ...CAVEATS.map((c) => `- ${c}`),
    '',
    `![Group cost against group size](${FILES.chart})`,
    '',
    '## All results',
    '',
    markdownTable(detailTable(report.results)),
    '',
  ].join('\n');
}

/** Writes results.json, results.md and group-chart.svg into `dir`; returns the file names. */
export async function writeReport(report: RunReport, dir: string): Promise<string[]> {
  await writeFile(join(dir, FILES.json), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(dir, FILES.markdown), renderMarkdown(report));
  await writeFile(
    join(dir, FILES.chart),
    renderGroupChart(
      report.results,
      `Medians from one run (${report.profile} profile, ${report.machine.node}, ${report.startedAt.slice(0, 10)}); log-log`,
    ),
  );
  return Object.values(FILES);
}

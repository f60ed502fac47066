/**
 * The group-size chart as hand-written SVG (no chart dependency): per-message
 * cost and membership-change cost against group size, log-log, one line per
 * library. Issue 5 ("an SVG or PNG chart of per-message cost against group
 * size").
 *
 * Peers whose figure does not depend on the group size (sender keys,
 * Megolm: one ciphertext per message) are drawn as dashed horizontal lines.
 */
import type { Result, Subject } from './results.ts';
import { formatValue } from './runner.ts';

interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: readonly [number, number][];
  /** A size-independent figure, drawn across the whole x range. */
  readonly flat: number | null;
}

interface Panel {
  readonly title: string;
  readonly series: readonly Series[];
}

const COLORS = {
  parleyNode: '#1f6feb',
  parleyNoble: '#7aa7f0',
  libsignal: '#d1242f',
  olm: '#2da44e',
  mls: '#8250df',
  mlsAlt: '#bf8700',
} as const;

function pointsFor(results: readonly Result[], subject: Subject, variant: string | null, opPrefix: string): [number, number][] {
  return results
    .filter(
      (r) =>
        r.subject === subject &&
        r.variant === variant &&
        r.op.startsWith(`${opPrefix}@`) &&
        r.status === 'measured' &&
        r.groupSize !== null &&
        r.median !== null,
    )
    .map((r) => [r.groupSize as number, r.median as number] as [number, number])
    .sort((a, b) => a[0] - b[0]);
}

function flatFor(results: readonly Result[], subject: Subject, op: string): number | null {
  const r = results.find((x) => x.subject === subject && x.variant === null && x.op === op && x.status === 'measured');
  return r?.median ?? null;
}

function panels(results: readonly Result[]): Panel[] {
  return [
    {
      title: 'Group message: encrypt + one member decrypt',
      series: [
        { label: 'Parley (node)', color: COLORS.parleyNode, points: pointsFor(results, 'parley', 'node', 'group-message'), flat: null },
        { label: 'Parley (noble)', color: COLORS.parleyNoble, points: pointsFor(results, 'parley', 'noble', 'group-message'), flat: null },
        {
          label: 'libsignal sender keys (any N)',
          color: COLORS.libsignal,
          points: [],
          flat: flatFor(results, 'libsignal-client', 'group-message'),
        },
        { label: 'Megolm (any N)', color: COLORS.olm, points: [], flat: flatFor(results, 'olm', 'group-message') },
        { label: 'ts-mls', color: COLORS.mls, points: pointsFor(results, 'ts-mls', null, 'group-message'), flat: null },
      ],
    },
    {
      title: 'Membership change: sender side',
      series: [
        {
          label: 'Parley add (node)',
          color: COLORS.parleyNode,
          points: pointsFor(results, 'parley', 'node', 'group-add-sender'),
          flat: null,
        },
        {
          label: 'Parley remove (node)',
          color: COLORS.parleyNoble,
          points: pointsFor(results, 'parley', 'node', 'group-remove-sender'),
          flat: null,
        },
        { label: 'ts-mls add commit', color: COLORS.mls, points: pointsFor(results, 'ts-mls', null, 'group-add-sender'), flat: null },
        {
          label: 'ts-mls remove commit',
          color: COLORS.mlsAlt,
          points: pointsFor(results, 'ts-mls', null, 'group-remove-sender'),
          flat: null,
        },
      ],
    },
  ];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (n: number) => (Math.round(n * 10) / 10).toString();

/** Axis label for a power of ten of microseconds. */
function decadeLabel(decade: number): string {
  if (decade < 3) return `${10 ** decade} µs`;
  if (decade < 6) return `${10 ** (decade - 3)} ms`;
  return `${10 ** (decade - 6)} s`;
}

function renderPanel(panel: Panel, x0: number, width: number, height: number): string {
  const left = x0 + 70;
  const right = x0 + width - 20;
  const top = 50;
  const bottom = height - 130;
  const out: string[] = [
    `<text x="${x0 + width / 2}" y="28" text-anchor="middle" font-size="15" font-weight="600">${esc(panel.title)}</text>`,
  ];

  const xs = panel.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = panel.series.flatMap((s) => [...s.points.map((p) => p[1]), ...(s.flat === null ? [] : [s.flat])]);
  if (ys.length === 0) {
    out.push(`<text x="${x0 + width / 2}" y="${(top + bottom) / 2}" text-anchor="middle" fill="#57606a">not measured</text>`);
    return out.join('\n');
  }
  const sizes = [...new Set(xs.length > 0 ? xs : [10, 100, 1000])].sort((a, b) => a - b);
  const xMin = Math.log10((sizes[0] as number) / 1.6);
  const xMax = Math.log10((sizes[sizes.length - 1] as number) * 1.6);
  const yMin = Math.floor(Math.log10(Math.min(...ys)));
  const yMax = Math.max(yMin + 1, Math.ceil(Math.log10(Math.max(...ys))));
  const X = (n: number) => left + ((Math.log10(n) - xMin) / (xMax - xMin)) * (right - left);
  const Y = (v: number) => bottom - ((Math.log10(v) - yMin) / (yMax - yMin)) * (bottom - top);

  out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#d0d7de"/>`);
  for (let d = yMin; d <= yMax; d++) {
    const v = 10 ** d;
    out.push(`<line x1="${left}" x2="${right}" y1="${fmt(Y(v))}" y2="${fmt(Y(v))}" stroke="#eaeef2"/>`);
    out.push(`<text x="${left - 8}" y="${fmt(Y(v) + 4)}" text-anchor="end" font-size="11">${esc(decadeLabel(d))}</text>`);
  }
  for (const n of sizes) {
    out.push(`<line x1="${fmt(X(n))}" x2="${fmt(X(n))}" y1="${top}" y2="${bottom}" stroke="#eaeef2"/>`);
    out.push(`<text x="${fmt(X(n))}" y="${bottom + 16}" text-anchor="middle" font-size="11">${n}</text>`);
  }
  out.push(`<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle" font-size="12">member devices (log)</text>`);
  out.push(
    `<text x="${x0 + 16}" y="${(top + bottom) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 + 16} ${(top + bottom) / 2})">time (log)</text>`,
  );

  let legendY = bottom + 56;
  for (const s of panel.series) {
    const has = s.points.length > 0 || s.flat !== null;
    if (s.flat !== null) {
      out.push(
        `<line x1="${left}" x2="${right}" y1="${fmt(Y(s.flat))}" y2="${fmt(Y(s.flat))}" stroke="${s.color}" stroke-width="2" stroke-dasharray="6 4"/>`,
      );
    }
    if (s.points.length > 0) {
      const path = s.points.map(([n, v]) => `${fmt(X(n))},${fmt(Y(v))}`).join(' ');
      out.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
      for (const [n, v] of s.points) {
        out.push(
          `<circle cx="${fmt(X(n))}" cy="${fmt(Y(v))}" r="3.5" fill="${s.color}"><title>${esc(`${s.label}, N=${n}: ${formatValue(v, 'us')}`)}</title></circle>`,
        );
      }
    }
    out.push(
      `<line x1="${left}" x2="${left + 24}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${s.color}" stroke-width="2"${s.flat !== null ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    out.push(
      `<text x="${left + 32}" y="${legendY}" font-size="12"${has ? '' : ' fill="#8c959f"'}>${esc(has ? s.label : `${s.label}: not measured`)}</text>`,
    );
    legendY += 16;
  }
  return out.join('\n');
}

/** The chart as a standalone SVG document. */
export function renderGroupChart(results: readonly Result[], caption: string): string {
  const width = 1000;
  const height = 470;
  const ps = panels(results);
  const panelWidth = width / ps.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" fill="#24292f">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...ps.map((p, i) => renderPanel(p, i * panelWidth, panelWidth, height - 20)),
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle" font-size="11" fill="#57606a">${esc(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

/**
 * The v2 section's tables (issues 16, 17, 19): ratchet v2 next to v1 and libsignal-client
 * (time and bytes per message, ratios from the same run), the byte budget checked, and
 * the section's other rows (forged headers, Reed-Solomon, sealed sender, franking, reports) with
 * each sealed or franked figure beside its unsealed or unfranked peer.
 */
import type { Result, Subject } from './results.ts';

const find = (results: readonly Result[], subject: Subject, variant: string | null, op: string): Result | null =>
  results.find((r) => r.subject === subject && r.variant === variant && r.op === op && r.status === 'measured') ?? null;

const value = (r: Result | null): number | null => (r && r.median !== null && r.median > 0 ? r.median : null);

const ratio = (a: number | null, b: number | null): number | null => (a !== null && b !== null ? a / b : null);

/** One compared operation: times (node backend unless said) and mean bytes per message. */
export interface RatchetRow {
  readonly op: string;
  readonly label: string;
  readonly v1: number | null;
  readonly v2: number | null;
  readonly v2Noble: number | null;
  readonly libsignal: number | null;
  /** v2 ÷ libsignal-client and v2 ÷ v1, node backend. */
  readonly v2VsLibsignal: number | null;
  readonly v2VsV1: number | null;
  readonly bytesV1: number | null;
  readonly bytesV2: number | null;
  readonly bytesLibsignal: number | null;
}

const RATCHET_OPS: readonly [op: string, bytes: string, label: string][] = [
  ['ping-pong', 'ping-pong', 'Ping-pong message, 100 B'],
  ['same-direction-100', 'same-direction', 'Same-direction message, 100 B'],
];

export function ratchetRows(results: readonly Result[]): RatchetRow[] {
  return RATCHET_OPS.flatMap(([op, bytes, label]) => {
    const v1 = value(find(results, 'parley', 'node', op));
    const v2 = value(find(results, 'parley', 'node', `v2-${op}`));
    const libsignal = value(find(results, 'libsignal-client', null, op));
    const row: RatchetRow = {
      op,
      label,
      v1,
      v2,
      v2Noble: value(find(results, 'parley', 'noble', `v2-${op}`)),
      libsignal,
      v2VsLibsignal: ratio(v2, libsignal),
      v2VsV1: ratio(v2, v1),
      bytesV1: value(find(results, 'parley', null, `bytes-${bytes}-v1`)),
      bytesV2: value(find(results, 'parley', null, `bytes-${bytes}-v2`)),
      bytesLibsignal: value(find(results, 'libsignal-client', null, `bytes-${bytes}`)),
    };
    return row.v2 === null && row.bytesV2 === null ? [] : [row];
  });
}

/** Issue 17: ratchet v2 adds under 150 bytes per message on average (formats-v2 §5.8). */
export const V2_BYTE_BUDGET = 150;

export interface ByteTarget {
  readonly target: string;
  /** Mean bytes v2 adds over v1 per message, or null when either is missing. */
  readonly added: number | null;
  readonly limit: number;
  readonly met: boolean | null;
}

export function checkByteTargets(results: readonly Result[]): ByteTarget[] {
  return RATCHET_OPS.map(([, bytes]) => {
    const v1 = value(find(results, 'parley', null, `bytes-${bytes}-v1`));
    const v2 = value(find(results, 'parley', null, `bytes-${bytes}-v2`));
    const added = v1 !== null && v2 !== null ? v2 - v1 : null;
    return {
      target: `ratchet v2 adds under ${V2_BYTE_BUDGET} B per message on average, ${bytes} (100 B)`,
      added,
      limit: V2_BYTE_BUDGET,
      met: added === null ? null : added < V2_BYTE_BUDGET,
    };
  });
}

/** A v2 row with its reference (the unsealed or unfranked figure it is read against). */
export interface V2Pair {
  readonly label: string;
  readonly node: Result | null;
  readonly noble: Result | null;
  /** The reference on the node backend, and what the row adds over it. */
  readonly reference: Result | null;
  /** A short name for the reference ("unsealed", "v1"). */
  readonly referenceName: string | null;
  readonly note: string;
}

/** Rows whose reference is another row of the section: sealed ← unsealed, franked group ← v1 group. */
const REFERENCE_OF: readonly [RegExp, (op: string) => string, string][] = [
  [/^sealed-1to1-sealed$/, () => 'sealed-1to1-unsealed', 'unsealed'],
  [/^sealed-group-(send|open)-sealed@(\d+)$/, (op) => op.replace('-sealed@', '-unsealed@'), 'unsealed'],
  [/^franking-group-v2$/, () => 'franking-group-v1', 'v1'],
];

/** Every timed v2 row other than the compared ratchet operations, in run order, one line per op. */
export function v2Pairs(results: readonly Result[]): V2Pair[] {
  const rows = results.filter((r) => r.section === 'v2' && r.unit === 'us' && !/^v2-(ping-pong|same-direction)/.test(r.op));
  const seen = new Set<string>();
  const out: V2Pair[] = [];
  for (const r of rows) {
    const key = `${r.subject}/${r.op}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const ref = REFERENCE_OF.find(([re]) => re.test(r.op));
    const refOp = ref ? ref[1](r.op) : null;
    const node = results.find((x) => x.subject === r.subject && x.op === r.op && (x.variant === 'node' || x.variant === null)) ?? null;
    out.push({
      label: r.label,
      node,
      noble: results.find((x) => x.subject === r.subject && x.op === r.op && x.variant === 'noble') ?? null,
      reference: refOp ? find(results, r.subject, 'node', refOp) : null,
      referenceName: ref ? ref[2] : null,
      note: node?.note ?? r.note ?? '',
    });
  }
  return out;
}

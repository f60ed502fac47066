/**
 * The comparison: one row per operation with Parley (both backends), the
 * primitive floor and every peer side by side, the ratios, and the issue's
 * targets checked against figures from the same run. Issue 5 ("the table
 * shows each peer's figure next to ours and the ratio"; "Targets").
 *
 * A ratio is always Parley (node) ÷ the other figure: below 1 means Parley
 * is faster.
 */
import type { Result, Subject } from './results.ts';

export const PEERS: readonly Subject[] = ['olm', 'libsignal-client', 'privacyresearch', 'ts-mls'];

export interface Cell {
  readonly result: Result | null;
  /** Parley (node) ÷ this figure, when both are measured. */
  readonly ratio: number | null;
}

export interface ComparisonRow {
  readonly op: string;
  readonly label: string;
  readonly parleyNode: Cell;
  readonly parleyNoble: Cell;
  readonly floorNode: Cell;
  readonly peers: Readonly<Record<string, Cell>>;
  /** The fastest measured peer for this row, and Parley's ratio to it. */
  readonly bestPeer: { subject: Subject; ratio: number } | null;
}

const ONE_TO_ONE: readonly [string, string][] = [
  ['setup', 'Session setup (bundle → first message read)'],
  ['same-direction-100', 'Same-direction message, 100 B'],
  ['same-direction-1024', 'Same-direction message, 1 KiB'],
  ['ping-pong', 'Ping-pong message (DH ratchet step)'],
  ['skipped-1000', 'Decrypt after 1,000 skipped'],
  ['late-of-1000', 'Decrypt a late message (1,000 keys held)'],
  ['serialize', 'Session record serialize'],
  ['deserialize', 'Session record deserialize'],
];

const GROUP: readonly [string, string][] = [
  ['group-message', 'Group message (encrypt + 1 decrypt)'],
  ['group-add-sender', 'Add member: sender side'],
  ['group-add-member', 'Add member: per existing member'],
  ['group-add-joiner', 'Add member: the joiner'],
  ['group-remove-sender', 'Remove member: sender side'],
  ['group-remove-member', 'Remove member: per remaining member'],
  ['group-rotate-sender', 'Chain rotation: sender side'],
];

function find(results: readonly Result[], subject: Subject, variant: string | null, op: string): Result | null {
  return results.find((r) => r.subject === subject && r.variant === variant && r.op === op) ?? null;
}

/** A peer's figure for `op`, falling back to its size-independent figure for group ops (`group-message@100` → `group-message`). */
function findPeer(results: readonly Result[], subject: Subject, op: string): Result | null {
  const exact = find(results, subject, null, op);
  if (exact) return exact;
  const at = op.indexOf('@');
  return at > 0 ? find(results, subject, null, op.slice(0, at)) : null;
}

function measured(r: Result | null): r is Result & { median: number } {
  return r !== null && r.status === 'measured' && r.median !== null && r.median > 0;
}

function cell(result: Result | null, parley: Result | null): Cell {
  return { result, ratio: measured(result) && measured(parley) ? parley.median / result.median : null };
}

/** Group sizes present in the results (ours or any peer's). */
export function groupSizes(results: readonly Result[]): number[] {
  return [...new Set(results.filter((r) => r.groupSize !== null).map((r) => r.groupSize as number))].sort((a, b) => a - b);
}

export function comparisonRows(results: readonly Result[]): ComparisonRow[] {
  const ops: [string, string][] = [...ONE_TO_ONE];
  const sizes = groupSizes(results);
  for (const [op, label] of GROUP) for (const n of sizes) ops.push([`${op}@${n}`, `${label}, N=${n}`]);

  const rows: ComparisonRow[] = [];
  for (const [op, label] of ops) {
    const parley = find(results, 'parley', 'node', op);
    const peers: Record<string, Cell> = {};
    for (const subject of PEERS) peers[subject] = cell(findPeer(results, subject, op), parley);
    const anything = parley ?? find(results, 'parley', 'noble', op) ?? PEERS.map((s) => peers[s]?.result).find(Boolean);
    if (!anything) continue;
    let bestPeer: ComparisonRow['bestPeer'] = null;
    for (const subject of PEERS) {
      const c = peers[subject] as Cell;
      if (!measured(c.result) || c.ratio === null) continue;
      const best = bestPeer ? peers[bestPeer.subject]?.result : null;
      if (!best || !measured(best) || c.result.median < best.median) bestPeer = { subject, ratio: c.ratio };
    }
    rows.push({
      op,
      label,
      parleyNode: cell(parley, parley),
      parleyNoble: cell(find(results, 'parley', 'noble', op), parley),
      floorNode: cell(find(results, 'floor', 'node', op), parley),
      peers,
      bestPeer,
    });
  }
  return rows;
}

export interface TargetCheck {
  readonly target: string;
  readonly op: string;
  readonly peer: Subject;
  /** The peer's operation, when it is not `op` (ratchet v2's `v2-ping-pong` against the peer's `ping-pong`). */
  readonly peerOp?: string;
  /** Met when Parley (node) ÷ peer is at most this (strictly below when `strict`). */
  readonly maxRatio: number;
  readonly strict: boolean;
  readonly ratio: number | null;
  readonly met: boolean | null;
}

/** The targets, as ratios in one run. */
export function checkTargets(results: readonly Result[]): TargetCheck[] {
  const specs: Omit<TargetCheck, 'ratio' | 'met'>[] = [
    { target: 'same-direction (100 B) at or below olm', op: 'same-direction-100', peer: 'olm', maxRatio: 1, strict: false },
    { target: 'same-direction (1 KiB) at or below olm', op: 'same-direction-1024', peer: 'olm', maxRatio: 1, strict: false },
    { target: 'ping-pong below libsignal-client', op: 'ping-pong', peer: 'libsignal-client', maxRatio: 1, strict: true },
    { target: 'setup below libsignal-client', op: 'setup', peer: 'libsignal-client', maxRatio: 1, strict: true },
    // Issue 17: ratchet v2 (with its PQ ratchet) below libsignal-client (with SPQR), same run.
    {
      target: 'ratchet v2 ping-pong below libsignal-client',
      op: 'v2-ping-pong',
      peer: 'libsignal-client',
      peerOp: 'ping-pong',
      maxRatio: 1,
      strict: true,
    },
  ];
  for (const n of groupSizes(results)) {
    specs.push({
      target: `group message, N=${n}: at most half of libsignal-client sender keys`,
      op: `group-message@${n}`,
      peer: 'libsignal-client',
      maxRatio: 0.5,
      strict: false,
    });
  }
  return specs.map((s) => {
    const parley = find(results, 'parley', 'node', s.op);
    const peer = findPeer(results, s.peer, s.peerOp ?? s.op);
    const ratio = measured(parley) && measured(peer) ? parley.median / peer.median : null;
    return { ...s, ratio, met: ratio === null ? null : s.strict ? ratio < s.maxRatio : ratio <= s.maxRatio };
  });
}

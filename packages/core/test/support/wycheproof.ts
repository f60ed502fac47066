/**
 * Loader for Project Wycheproof vector files (C2SP/wycheproof,
 * `testvectors_v1/`), vendored unchanged in `test-vectors/wycheproof/` with
 * their license and a NOTICE that names the upstream commit and lists each
 * file's SHA-256. They live in the repository so that the suites run on every
 * clone and in CI: nothing is skipped, and a missing or altered file fails.
 *
 * This module knows the file layout (`testGroups[].tests[]`) and checks the
 * parts every test relies on; it knows nothing of any primitive. Each test
 * file reads the fields its schema names through `hexField`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex } from '../../src/bytes.ts';

export type WycheproofResult = 'valid' | 'invalid' | 'acceptable';

/** One test case. Fields beyond the common ones depend on the file's schema. */
export interface WycheproofCase {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly result: WycheproofResult;
  readonly [field: string]: unknown;
}

/** A test group: parameters shared by its cases (sizes, a public key, ...). */
export interface WycheproofGroup {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** A case with the group it belongs to, flattened for a single loop. */
export interface WycheproofEntry {
  readonly group: WycheproofGroup;
  readonly test: WycheproofCase;
}

export interface WycheproofFile {
  readonly name: string;
  readonly algorithm: string;
  readonly entries: readonly WycheproofEntry[];
}

/** The vendored copy, relative to this file: repository root + test-vectors/wycheproof/. */
export const WYCHEPROOF_DIR = fileURLToPath(new URL('../../../../test-vectors/wycheproof/', import.meta.url));

/**
 * The SHA-256 of each vendored file as the NOTICE lists it. A loaded file
 * must match its entry, so the copy is provably the upstream bytes.
 */
export function noticeDigests(): Map<string, string> {
  const notice = readFileSync(join(WYCHEPROOF_DIR, 'NOTICE'), 'utf8');
  const digests = new Map<string, string>();
  for (const m of notice.matchAll(/^\s+([0-9a-f]{64})\s+(\S+)$/gm)) digests.set(m[2] as string, m[1] as string);
  return digests;
}

let digests: Map<string, string> | undefined;

const RESULTS: ReadonlySet<string> = new Set(['valid', 'invalid', 'acceptable']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads one vector file, checks its envelope (algorithm, group type, the
 * common fields of every case, and that `numberOfTests` matches the cases
 * found) and returns the cases flattened with their groups.
 */
export function loadWycheproof(name: string, expected: { algorithm: string; groupType: string }): WycheproofFile {
  const path = join(WYCHEPROOF_DIR, name);
  if (!existsSync(path)) throw new Error(`Wycheproof file ${path} is missing (it is part of the repository)`);
  const raw = readFileSync(path);
  digests ??= noticeDigests();
  const expectedDigest = digests.get(name);
  if (!expectedDigest) throw new Error(`${name}: not listed in test-vectors/wycheproof/NOTICE`);
  if (createHash('sha256').update(raw).digest('hex') !== expectedDigest) {
    throw new Error(`${name}: SHA-256 differs from test-vectors/wycheproof/NOTICE (the copy must be the upstream bytes)`);
  }
  const json: unknown = JSON.parse(raw.toString('utf8'));
  if (!isRecord(json) || !Array.isArray(json.testGroups)) throw new Error(`${name}: no testGroups array`);
  if (json.algorithm !== expected.algorithm) {
    throw new Error(`${name}: algorithm is ${String(json.algorithm)}, expected ${expected.algorithm}`);
  }
  const entries: WycheproofEntry[] = [];
  for (const group of json.testGroups as unknown[]) {
    if (!isRecord(group) || !Array.isArray(group.tests)) throw new Error(`${name}: a group has no tests array`);
    if (group.type !== expected.groupType) throw new Error(`${name}: group type ${String(group.type)}, expected ${expected.groupType}`);
    for (const test of group.tests as unknown[]) {
      if (!isRecord(test) || !Number.isInteger(test.tcId)) throw new Error(`${name}: a case has no integer tcId`);
      if (typeof test.result !== 'string' || !RESULTS.has(test.result)) throw new Error(`${name}: tcId ${test.tcId} has no known result`);
      const flags = test.flags ?? [];
      if (!Array.isArray(flags) || !flags.every((f) => typeof f === 'string')) throw new Error(`${name}: tcId ${test.tcId} has bad flags`);
      const normalized: WycheproofCase = {
        ...test,
        tcId: test.tcId as number,
        result: test.result as WycheproofResult,
        comment: typeof test.comment === 'string' ? test.comment : '',
        flags: flags as string[],
      };
      entries.push({ group: group as WycheproofGroup, test: normalized });
    }
  }
  if (json.numberOfTests !== entries.length) {
    throw new Error(`${name}: numberOfTests is ${String(json.numberOfTests)} but ${entries.length} cases were read`);
  }
  return { name, algorithm: expected.algorithm, entries };
}

/** A hex field of a case or group as bytes; throws (naming it) when absent or not hex. */
export function hexField(obj: Readonly<Record<string, unknown>>, field: string): Uint8Array {
  const v = obj[field];
  if (typeof v !== 'string') throw new Error(`field "${field}" is not a string`);
  return fromHex(v);
}

/** A numeric field of a case or group; throws (naming it) when absent. */
export function numberField(obj: Readonly<Record<string, unknown>>, field: string): number {
  const v = obj[field];
  if (typeof v !== 'number') throw new Error(`field "${field}" is not a number`);
  return v;
}

/** Short label of a case for failure lists: `tcId 12 (comment)`. */
export function caseLabel(test: WycheproofCase): string {
  return test.comment ? `tcId ${test.tcId} (${test.comment})` : `tcId ${test.tcId}`;
}

/**
 * Running tally of one file's loop: how many cases ran per expected result,
 * how many were skipped as not applicable, and the failures (by label). A
 * test asserts the whole tally, so a loop that runs nothing cannot pass.
 */
export class Tally {
  readonly ran: Record<string, number> = {};
  skipped = 0;
  readonly failures: string[] = [];

  count(test: WycheproofCase): void {
    this.ran[test.result] = (this.ran[test.result] ?? 0) + 1;
  }

  skip(): void {
    this.skipped++;
  }

  /** Records a failure when `ok` is false. */
  check(ok: boolean, test: WycheproofCase, what: string): void {
    if (!ok) this.failures.push(`${caseLabel(test)}: ${what}`);
  }

  /** Runs `fn`, recording an unexpected exception as a failure (by name only). */
  guard(test: WycheproofCase, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.failures.push(`${caseLabel(test)}: threw ${e instanceof Error ? e.name + ': ' + e.message : String(e)}`);
    }
  }
}

/**
 * The moderator tool (spec/17-franking-and-reports.md §6):
 *
 *   parley-relay reports list [options]          queued reports, oldest first
 *   parley-relay reports show <id> [options]     one report: reason, items, contents, verdict
 *   parley-relay reports verify [<id>] [options] re-verify one report, or all
 *
 * It opens the relay's own storage (the same --data-dir or --database-url
 * as the relay), so it verifies with the relay's frank keys: a report whose
 * key has been destroyed since it was queued no longer verifies (its proof
 * period is over). Frank keys are never printed.
 *
 * Exit status: 0 done (every verified report verified), 3 at least one
 * report did not verify, 2 bad usage.
 */
import { type AbuseReport, type ReportItem, decodeReport, defaultProvider, fromUtf8 } from '@parley/core';
import type { RelayConfig } from '../config.ts';
import { ConfigError } from '../config.ts';
import { FrankKeys } from '../franking/keys.ts';
import { verifyStoredReport } from '../franking/verify.ts';
import { toBase64Url } from '../http/encoding.ts';
import type { BlobStore } from '../attachments/blob-store.ts';
import { openBlobStore, openStorage } from '../storage/backends.ts';
import type { RelayStorage, StoredReport } from '../storage/types.ts';

export const REPORT_SUBCOMMANDS = ['list', 'show', 'verify'] as const;
/** Rows read per page when listing or verifying all. */
const PAGE = 100;
/** Exit status when a report no longer verifies. */
export const EXIT_UNVERIFIED = 3;
/** Plaintext shown as text up to this many characters; the rest is elided (show prints sizes). */
const MAX_SHOWN_CHARS = 2000;

const iso = (ms: number) => new Date(ms).toISOString();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const timeOf = (b8: Uint8Array) => Number(new DataView(b8.buffer, b8.byteOffset, 8).getBigUint64(0));

/**
 * What a terminal acts on or reorders by, beyond what JSON escapes (C0 and
 * the quote): DEL, C1 (U+009B is an 8-bit CSI), the bidi marks, overrides and
 * isolates (they make "gpj.exe" read "exe.jpg"), the Unicode line and
 * paragraph separators, and U+FEFF (invisible; the decoder below keeps a
 * leading one, so the moderator sees every character the sender wrote).
 */
const STEERING = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * Someone else's text (a reporter's comment, a sender's plaintext) as one
 * line that can neither steer the terminal nor forge a line of this tool:
 * JSON-quoted (line breaks and C0 escaped), and the rest of STEERING as
 * \uXXXX.
 */
function quoted(text: string): string {
  return JSON.stringify(text).replace(STEERING, (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`);
}

/** Text (quoted, see above) when the bytes are valid UTF-8 without control characters but line breaks and tabs, else hex. */
function shown(plaintext: Uint8Array): string {
  try {
    // fromUtf8 keeps a leading U+FEFF (spec/01 §2.2): part of what the sender wrote, shown escaped like the rest of STEERING.
    const text = fromUtf8(plaintext);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses.
    if (!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) {
      return text.length > MAX_SHOWN_CHARS ? `${quoted(text.slice(0, MAX_SHOWN_CHARS))}… (${plaintext.length} bytes)` : quoted(text);
    }
  } catch {
    // not UTF-8: hex below
  }
  const h = hex(plaintext.subarray(0, MAX_SHOWN_CHARS / 2));
  return `hex:${h}${plaintext.length > MAX_SHOWN_CHARS / 2 ? `… (${plaintext.length} bytes)` : ''}`;
}

function summary(r: StoredReport, report: AbuseReport | null): string {
  const who = `${toBase64Url(r.reporter.accountKey)}:${r.reporter.deviceId}`;
  const what = report === null ? 'undecodable' : `reason=${report.reason} items=${report.items.length}`;
  return `#${r.id} ${iso(r.receivedAt)} reporter=${who} envelope=${hex(r.envelopeId)} ${what}`;
}

function decoded(r: StoredReport): AbuseReport | null {
  try {
    return decodeReport(r.report);
  } catch {
    return null;
  }
}

function itemLines(item: ReportItem, n: number): string[] {
  return [
    `  item ${n} (${item.role === 1 ? 'reported' : 'context'})`,
    `    sender      ${toBase64Url(item.sender.accountKey)}:${item.sender.deviceId}${item.token === null ? '' : ' (sealed: named by moderator token)'}`,
    `    recipient   device ${item.recipientDevice}`,
    `    accepted    ${iso(timeOf(item.acceptedAt))} (frank key ${item.frankKeyId})`,
    `    envelope    ${hex(item.envelopeId)}`,
    `    attachments ${item.attachments.length}`,
    `    content     ${shown(item.plaintext)}`,
  ];
}

async function verdictOf(storage: RelayStorage, blobs: BlobStore, keys: FrankKeys, r: StoredReport, now: number): Promise<string> {
  const report = decoded(r);
  if (report === null) return 'REFUSED MALFORMED';
  const v = await verifyStoredReport(report, {
    storage,
    frankKeys: keys,
    provider: defaultProvider(),
    reporter: r.reporter.accountKey,
    now,
    // Queued once; re-verifying it is not a second report.
    checkDuplicate: false,
    blobs,
  });
  if (v.ok) return 'verified';
  return `REFUSED ${v.code} (item ${v.item}${v.reason === undefined ? '' : `, ${v.reason}`})`;
}

async function* allReports(storage: RelayStorage): AsyncGenerator<StoredReport> {
  let after = 0;
  for (;;) {
    const page = await storage.listReports(after, PAGE);
    yield* page;
    if (page.length < PAGE) return;
    after = (page.at(-1) as StoredReport).id;
  }
}

function reportId(word: string | undefined): number {
  if (word === undefined || !/^[0-9]{1,15}$/.test(word)) throw new ConfigError('usage: parley-relay reports show|verify <id>');
  return Number(word);
}

/** Checks the words after `reports` before anything is opened. */
export function checkReportsUsage(positionals: readonly string[]): void {
  const [sub, id, ...rest] = positionals;
  if (!(REPORT_SUBCOMMANDS as readonly string[]).includes(sub ?? '') || rest.length > 0) {
    throw new ConfigError('usage: parley-relay reports list | show <id> | verify [<id>]');
  }
  if (sub === 'show' || (sub === 'verify' && id !== undefined)) reportId(id);
  if (sub === 'list' && id !== undefined) throw new ConfigError('usage: parley-relay reports list');
}

/** Runs `reports <sub>`; writes lines with `out`; resolves with the exit status. */
export async function reportsCommand(
  config: RelayConfig,
  positionals: readonly string[],
  out: (line: string) => void,
  now = Date.now(),
): Promise<number> {
  checkReportsUsage(positionals);
  const [sub, idWord] = positionals;
  const storage = await openStorage(config);
  const blobs = await openBlobStore(config);
  const keys = new FrankKeys(storage, defaultProvider());
  try {
    if (sub === 'list') {
      let n = 0;
      for await (const r of allReports(storage)) {
        out(summary(r, decoded(r)));
        n++;
      }
      out(`${n} report${n === 1 ? '' : 's'} queued`);
      return 0;
    }
    if (sub === 'show') {
      const r = await storage.getReport(reportId(idWord));
      if (r === undefined) {
        out(`no report #${idWord}`);
        return EXIT_UNVERIFIED;
      }
      const report = decoded(r);
      out(summary(r, report));
      if (report !== null) {
        out(`  comment     ${quoted(report.comment)}`);
        for (const [n, item] of report.items.entries()) for (const line of itemLines(item, n)) out(line);
      }
      const verdict = await verdictOf(storage, blobs, keys, r, now);
      out(`  verdict     ${verdict}`);
      return verdict === 'verified' ? 0 : EXIT_UNVERIFIED;
    }
    // verify
    const targets: StoredReport[] = [];
    if (idWord !== undefined) {
      const r = await storage.getReport(reportId(idWord));
      if (r === undefined) {
        out(`no report #${idWord}`);
        return EXIT_UNVERIFIED;
      }
      targets.push(r);
    }
    let failed = 0;
    const check = async (r: StoredReport) => {
      const verdict = await verdictOf(storage, blobs, keys, r, now);
      if (verdict !== 'verified') failed++;
      out(`#${r.id} ${verdict}`);
    };
    if (idWord !== undefined) for (const r of targets) await check(r);
    else for await (const r of allReports(storage)) await check(r);
    return failed === 0 ? 0 : EXIT_UNVERIFIED;
  } finally {
    await blobs.close();
    await storage.close();
  }
}

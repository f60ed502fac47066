/**
 * `npm run bench`: runs the benchmark suite and writes the results. Issue 5.
 *
 *   npm run bench                       full run (under 10 minutes here)
 *   npm run bench -- --quick            reduced set (under a minute; what CI runs)
 *   npm run bench -- --only peers,floor sections: one-to-one, groups, floor, peers, v2, breakdown, relay
 *   npm run bench -- --json             print the JSON report on stdout instead of the table
 *   npm run bench -- --render <file>    no measuring: re-render the table, Markdown and chart from a results.json
 *   npm run bench -- --keep <file>      with --only: carry the other sections' rows over from that results.json
 *                                       (the report says which sections and from which run)
 *   npm run bench -- --out <dir>        where to write results (default bench/results, or
 *                                       bench/results/quick for --quick, so a quick run never
 *                                       replaces the full results)
 *
 * Progress goes to stderr, the table (or JSON) to stdout.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runSuite } from './suite.ts';
import { renderConsole, writeReport } from './report.ts';
import { type RunReport, SECTIONS, type Section, keepSections } from './results.ts';

const DEFAULT_OUT = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'results');

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run bench -- [--quick] [--only ${SECTIONS.join(',')}] [--keep <results.json>] [--json] [--out <dir>]\n`,
  );
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { quick?: boolean; json?: boolean; only?: string[]; out?: string; render?: string; keep?: string };
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: 'boolean' },
        json: { type: 'boolean' },
        only: { type: 'string', multiple: true },
        out: { type: 'string' },
        render: { type: 'string' },
        keep: { type: 'string' },
      },
      strict: true,
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  const only = (values.only ?? []).flatMap((s) => s.split(',')).filter(Boolean);
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) usage(`unknown section "${s}"`);
  const sections = (only.length > 0 ? only : SECTIONS) as Section[];

  const measured: RunReport = values.render
    ? (JSON.parse(await readFile(values.render, 'utf8')) as RunReport)
    : await runSuite({
        quick: values.quick ?? false,
        sections,
        log: (line) => process.stderr.write(`${line}\n`),
      });
  const report = values.keep ? keepSections(measured, JSON.parse(await readFile(values.keep, 'utf8')) as RunReport) : measured;
  const outDir = resolve(values.out ?? (values.render ? dirname(values.render) : values.quick ? join(DEFAULT_OUT, 'quick') : DEFAULT_OUT));
  await mkdir(outDir, { recursive: true });
  const files = await writeReport(report, outDir);
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${renderConsole(report)}\n`);
  process.stderr.write(`wrote ${files.map((f) => join(outDir, f)).join(', ')}\n`);
}

main().then(
  // Peers (websockets, wasm, native handles) may leave timers behind; the run is over.
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);

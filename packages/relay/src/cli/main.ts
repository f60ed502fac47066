/**
 * The `parley-relay` command (package.json `bin`, compiled to
 * dist/cli/bin.js; `npm start` in the repository):
 *
 *   parley-relay [options]                 serve (serve.ts)
 *   parley-relay migrate [options]         bring the database schema up to date and exit
 *   parley-relay backup <folder> [options] online SQLite backup (backup.ts)
 *   parley-relay reports list|show <id>|verify [<id>] [options]  the moderator tool (reports.ts)
 *   parley-relay --help | --version
 *
 * Exit status: 0 done, 1 a startup failure (one line, no stack trace, for
 * everything an operator can fix: startup-errors.ts), 2 bad configuration
 * or usage, 3 a report that does not verify (reports).
 */
import { readFileSync } from 'node:fs';
import { openBlobStore, openStorage } from '../storage/backends.ts';
import { ConfigError, type RelayConfig, loadConfig } from '../config.ts';
import { backupSqlite } from './backup.ts';
import { checkReportsUsage, reportsCommand } from './reports.ts';
import { prepareDataDir, serve, exitOnSignals } from './serve.ts';
import { helpText } from './help.ts';
import { StartupError, describeStartupError } from './startup-errors.ts';
import { startTailTrace } from '../tail-trace.ts';

const COMMANDS = ['serve', 'migrate', 'backup', 'reports'] as const;
type Command = (typeof COMMANDS)[number];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

interface Invocation {
  readonly command: Command;
  readonly positionals: string[];
  readonly options: string[];
}

/** The command is the first word; positionals follow it; everything from the first `--flag` on is configuration. */
function parseInvocation(argv: readonly string[]): Invocation {
  const args = [...argv];
  let command: Command = 'serve';
  if (args[0] !== undefined && !args[0].startsWith('-')) {
    const word = args.shift() as string;
    if (!(COMMANDS as readonly string[]).includes(word)) throw new ConfigError(`unknown command "${word}" (try --help)`);
    command = word as Command;
  }
  const positionals: string[] = [];
  while (args[0] !== undefined && !args[0].startsWith('-')) positionals.push(args.shift() as string);
  return { command, positionals, options: args };
}

async function migrate(config: RelayConfig): Promise<string> {
  if (config.databaseUrl === '') prepareDataDir(config.dataDir);
  const storage = await openStorage(config);
  await storage.close();
  const blobs = await openBlobStore(config);
  await blobs.close();
  return config.databaseUrl === '' ? `schema up to date in ${config.dataDir}/relay.sqlite` : 'schema up to date in PostgreSQL';
}

/** Runs the command line; resolves with the exit status (serve resolves once listening and keeps running). */
export async function runRelayCli(argv: readonly string[]): Promise<number | 'serving'> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return 0;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  let config: RelayConfig;
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
    config = loadConfig(invocation.options);
    if (invocation.command === 'backup' && invocation.positionals.length !== 1)
      throw new ConfigError('usage: parley-relay backup <folder>');
    if (invocation.command === 'reports') checkReportsUsage(invocation.positionals);
    else if (invocation.command !== 'backup' && invocation.positionals.length > 0) {
      throw new ConfigError(`unexpected argument "${invocation.positionals[0]}" (try --help)`);
    }
  } catch (error) {
    if (error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`parley-relay: ${(error as Error).message}\n`);
      return 2;
    }
    throw error;
  }
  try {
    if (invocation.command === 'migrate') {
      process.stdout.write(`${await migrate(config)}\n`);
      return 0;
    }
    if (invocation.command === 'reports') {
      return await reportsCommand(config, invocation.positionals, (line) => process.stdout.write(`${line}\n`));
    }
    if (invocation.command === 'backup') {
      const result = backupSqlite(config, invocation.positionals[0] as string);
      process.stdout.write(`backup written to ${result.folder} (relay.sqlite${result.attachments ? ', attachments/' : ''})\n`);
      return 0;
    }
    // A debug hook for latency work, not configuration: off unless set (tail-trace.ts).
    const tailFile = process.env.PARLEY_TAIL_TRACE;
    if (tailFile) startTailTrace(tailFile);
    const relay = await serve(config);
    exitOnSignals(relay, config.shutdownTimeoutSeconds);
    return 'serving';
  } catch (error) {
    const line = describeStartupError(error, config);
    if (line === undefined) throw error;
    process.stderr.write(`parley-relay: ${line}\n`);
    return 1;
  }
}

/** For bin.ts and src/main.ts: run, then exit unless the relay is serving. */
export async function main(argv: readonly string[]): Promise<void> {
  let status: number | 'serving';
  try {
    status = await runRelayCli(argv);
  } catch (error) {
    // Not an operator's mistake: a bug, printed whole.
    console.error(error);
    status = 1;
  }
  if (status !== 'serving') process.exit(status);
}

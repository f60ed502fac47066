/**
 * `parley`: a command-line chat on the SDK. spec/10-client.md §11; the
 * README's "Command-line chat" walks through it; `parley help` lists the
 * commands (commands.ts) and `parley help <command>` shows one.
 *
 * One home directory is one device, used by one process at a time
 * (device-socket.ts): while `chat` or `listen` runs, other commands for the
 * same home run inside it, over a local socket; otherwise they wait their
 * turn. So the relay never sees two connections for one device.
 */
import { createInterface } from 'node:readline';
import type { ParleyClient } from '../client.ts';
import { isClientError } from '../errors.ts';
import { chat } from './chat.ts';
import { type Command, type Ctx, UsageError, commandHelp, commandNamed, describeError, target, usage } from './commands.ts';
import { type HomeLock, type Out, type Request, forward, pause, tryLock } from './device-socket.ts';
import { Downloads } from './downloads.ts';
import { QueuedWatch, follow } from './follow.ts';
import {
  type Home,
  type Session,
  completeLink,
  hasStore,
  linkRequest,
  makeHome,
  openClient,
  openHome,
  registerClient,
  removeSetup,
  saveRelay,
} from './home.ts';

/** How long `inbox` waits for the relay to hand over what waits. */
const INBOX_DRAIN_MS = 15_000;

const consoleOut: Out = { print: (t) => console.log(t), error: (t) => console.error(t) };

interface Parsed {
  readonly home: string | undefined;
  readonly relay: string | undefined;
  readonly caption: string | undefined;
  readonly help: boolean;
  readonly command: string | undefined;
  readonly args: string[];
}

const VALUE_OPTIONS = new Set(['home', 'relay', 'caption']);

/**
 * Options anywhere, the rest positional. Not util.parseArgs: an account id
 * is base64url and may begin with "-" ("-6Fq…"), which parseArgs takes for
 * an unknown option. Anything after "--" is positional too.
 */
function parse(argv: readonly string[]): Parsed {
  const values: Record<string, string> = {};
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    const option = /^--([a-z]+)(?:=(.*))?$/s.exec(arg);
    if (option && VALUE_OPTIONS.has(option[1] as string)) {
      const value = option[2] ?? argv[++i];
      if (value === undefined) throw new UsageError(`--${option[1]} needs a value`);
      values[option[1] as string] = value;
      continue;
    }
    if (arg.startsWith('-') && !ACCOUNT_ID.test(arg))
      throw new UsageError(`unknown option ${arg} (put -- before an argument that begins with "-")`);
    positionals.push(arg);
  }
  const [command, ...args] = positionals;
  return { home: values['home'], relay: values['relay'], caption: values['caption'], help, command, args };
}

/** An account id: 43 base64url characters (it may begin with "-"). */
const ACCOUNT_ID = /^[A-Za-z0-9_-]{43}$/;

/** The command, its arguments checked; throws a UsageError naming the command's own usage. */
function resolveCommand(p: Parsed): Command {
  const c = commandNamed(p.command as string);
  if (!c) throw new UsageError(`unknown command: ${p.command} (parley help lists the commands)`);
  if (p.args.length < c.min && !p.help) throw new UsageError(`missing arguments\n${commandHelp(c)}`);
  return c;
}

export async function main(argv: string[], out: Out = consoleOut): Promise<number> {
  const p = parse(argv);
  // Help and mistakes are answered before the home is touched: nothing is created.
  if (p.command === 'help' || (!p.command && p.help)) {
    const about = p.args[0] ? commandNamed(p.args[0]) : undefined;
    if (p.args[0] && !about) throw new UsageError(`unknown command: ${p.args[0]}`);
    out.print(about ? commandHelp(about) : usage());
    return 0;
  }
  if (!p.command) {
    out.print(usage());
    return 1;
  }
  const command = resolveCommand(p);
  if (p.help) {
    out.print(commandHelp(command));
    return 0;
  }
  const home = openHome(p.home, p.relay);
  if (command.setup) return setup(home, command.name, out);
  if (!hasStore(home))
    throw new UsageError(`no account in ${home.dir}: run parley register (or parley link to add this device to your account)`);
  return withHome(home, p, out);
}

// ---- one process per home ---------------------------------------------------

/** Runs a command in this process (holding the home), or in the process that holds it. */
async function withHome(home: Home, p: Parsed, out: Out): Promise<number> {
  let told = false;
  for (;;) {
    const lock = await tryLock(home.dir);
    if (lock) {
      try {
        return await runHolding(home, lock, p, out);
      } finally {
        await lock.release();
      }
    }
    // "--" keeps arguments that begin with "-" (a message, say) from reading as options on the other side.
    const argv = [...(p.caption ? ['--caption', p.caption] : []), '--', p.command as string, ...p.args];
    const answer = await forward(home.dir, { argv, cwd: process.cwd() }, out);
    if (typeof answer === 'number') return answer;
    if (answer !== 'gone' && !told) {
      out.error(`waiting: another parley (${answer.busy}) is using ${home.dir}; this runs when it is done (Ctrl-C to give up)`);
      told = true;
    }
    await pause();
  }
}

/** This process holds the home: opens the client, serves other processes if it stays online, and runs the command. */
async function runHolding(home: Home, lock: HomeLock, p: Parsed, out: Out): Promise<number> {
  const command = resolveCommand(p);
  const session = await openClient(home);
  saveRelay(home);
  let display = out;
  const downloads = new Downloads(home.dir, session.client, () => display);
  // Messages an earlier run left queued (the relay was down) are announced when they go out.
  const conversations = [...session.client.contacts().map((c) => c.account), ...session.client.groups().map((g) => g.conversation)];
  const queued = new QueuedWatch(session.client, conversations, () => display);
  const processHooks: Ctx['process'] = {
    setOut: (o) => {
      display = o;
    },
    out: () => display,
    watchQueued: (conversation) => queued.watch(session.client, conversation),
  };
  const ctx: Ctx = { session, home, out, cwd: process.cwd(), caption: p.caption, downloads, live: null, process: processHooks };
  try {
    if (command.live) {
      // Other processes for this home send their commands here, one at a time.
      lock.serve(
        (request, requestOut) => serveForwarded(ctx, request, requestOut, command.name),
        () => command.name,
      );
    } else
      lock.serve(
        () => 'busy',
        () => command.name,
      );
    return await runCommand(ctx, command, p.args);
  } finally {
    // Every file that arrived is saved (or left for the next run to resume) before the process exits.
    await downloads.idle();
    queued.close();
    await session.close();
  }
}

function serveForwarded(ctx: Ctx, request: Request, out: Out, liveName: string): Promise<number> {
  return (async () => {
    let p: Parsed;
    let command: Command;
    try {
      p = parse(request.argv);
      command = resolveCommand(p);
    } catch (e) {
      out.error((e as Error).message);
      return 1;
    }
    const forwarded: Ctx = { ...ctx, out, cwd: request.cwd, caption: p.caption, live: liveName };
    try {
      return await runCommand(forwarded, command, p.args);
    } catch (e) {
      out.error(`error: ${describeError(e)}`);
      return 1;
    }
  })();
}

async function runCommand(ctx: Ctx, command: Command, args: string[]): Promise<number> {
  const { client } = ctx.session;
  if (ctx.live && (command.live || command.name === 'inbox')) {
    if (command.name === 'inbox') {
      ctx.out.print(`(this home is online in "parley ${ctx.live}": messages show there)`);
      return 0;
    }
    ctx.out.error(`"parley ${ctx.live}" already runs for this home; use that one`);
    return 1;
  }
  let shown: () => void = () => undefined;
  let drained: Promise<void> | undefined;
  if (command.online && !ctx.live) {
    // What arrives while a one-shot command is online is shown, not just
    // stored; the listeners go on before start(), or what the relay pushes
    // first would be stored and acknowledged without being printed.
    if (!command.live) shown = follow(client, ctx.downloads, ctx.process.out);
    if (command.name === 'inbox') drained = untilDrained(client);
    await client.start();
    ctx.downloads.resume();
  }
  try {
    if (command.name === 'inbox') return await inbox(ctx, drained ?? untilDrained(client));
    return await runOne(ctx, command, args);
  } finally {
    shown();
  }
}

async function runOne(ctx: Ctx, command: Command, args: string[]): Promise<number> {
  const { client } = ctx.session;
  switch (command.name) {
    case 'chat': {
      const stop = follow(client, ctx.downloads, ctx.process.out, { markRead: target(client, args[0] as string) });
      try {
        return await chat(ctx, args[0] as string);
      } finally {
        stop();
      }
    }
    case 'listen':
      return listen(ctx);
    default:
      return (await command.run?.(ctx, args)) ?? 0;
  }
}

/** Waits until the relay says the backlog is delivered (`drained`), then until every file is saved. */
async function inbox(ctx: Ctx, drained: Promise<void>): Promise<number> {
  const { client } = ctx.session;
  await drained;
  await client.flush().catch(() => undefined);
  // The files of what arrived: every one saved before the process ends.
  await ctx.downloads.idle();
  const left = ctx.downloads.pending;
  if (left) ctx.out.print(`(${left} file(s) not saved yet; the next parley command tries again)`);
  return 0;
}

async function listen(ctx: Ctx): Promise<number> {
  const { client } = ctx.session;
  let ended: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => {
    ended = resolve;
  });
  const stop = follow(client, ctx.downloads, ctx.process.out, { onEnded: () => ended(3) });
  const onSignal = () => ended(0);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  ctx.out.print(`listening as ${client.accountId.slice(0, 8)}… (Ctrl-C to stop)`);
  try {
    return await done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    stop();
  }
}

async function untilDrained(client: ParleyClient, ms = INBOX_DRAIN_MS): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    const off = client.on('connection', (c) => {
      if (c.state === 'drained' || c.state === 'ended') done();
    });
    function done() {
      clearTimeout(timer);
      off();
      resolve();
    }
  });
}

// ---- register and link ------------------------------------------------------

async function setup(home: Home, what: string, out: Out): Promise<number> {
  const createdDir = makeHome(home);
  const lock = await tryLock(home.dir);
  if (!lock) throw new Error(`another parley process is using ${home.dir}`);
  const fresh = !hasStore(home);
  try {
    if (!fresh) {
      const session = await openClient(home).catch((e) => {
        if (isClientError(e, 'NOT_REGISTERED') && what === 'link') return null;
        throw e;
      });
      if (session) {
        const id = session.client.accountId;
        await session.close();
        throw new Error(`${home.dir} already holds account ${id} (use another --home for another device)`);
      }
    }
    const session = what === 'register' ? await registerClient(home) : await link(home, out);
    // A new device's request for the account's contacts goes out now, not at the next command.
    if (what === 'link') await session.client.flush().catch(() => undefined);
    saveRelay(home);
    if (what === 'register')
      out.print(`registered on ${home.relay}\nyour account id (give it to your contacts):\n  ${session.client.accountId}`);
    else
      out.print(
        `linked as device ${session.client.deviceId} of account\n  ${session.client.accountId}\n(check that the primary device shows the same id)`,
      );
    await session.close();
    return 0;
  } catch (e) {
    // Nothing is left of a setup that failed: the retry starts clean.
    if (fresh) removeSetup(home, false);
    throw e;
  } finally {
    await lock.release();
    if (fresh && createdDir && !hasStore(home)) removeSetup(home, true);
  }
}

async function link(home: Home, out: Out): Promise<Session> {
  out.print(`on your primary device run:\n  parley approve ${linkRequest(home)}\nthen paste its answer here:`);
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      rl.once('line', resolve);
      rl.once('close', () => reject(new Error('no answer was pasted')));
    });
    return await completeLink(home, answer.trim());
  } finally {
    rl.close();
  }
}

/** Runs the CLI and exits with its status; errors print without stack traces (they never carry secrets). */
export async function runCli(argv: string[]): Promise<never> {
  try {
    process.exit(await main(argv));
  } catch (e) {
    // A usage error names the command's own usage, or points at `parley help`: no wall of text.
    if (e instanceof UsageError) console.error(e.message);
    else console.error(`error: ${describeError(e)}`);
    process.exit(1);
  }
}

// Executed directly (npm run parley: node --import tsx packages/client/src/cli/main.ts).
if (process.argv[1] && /cli[\\/]main\.ts$/.test(process.argv[1])) void runCli(process.argv.slice(2));

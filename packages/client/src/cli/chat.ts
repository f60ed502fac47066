/**
 * `parley chat <name>`: an interactive conversation in the terminal.
 *
 * On a terminal, incoming lines are printed above the prompt (the line being
 * typed is cleared, the message printed, the prompt and the typed text
 * redrawn), so typing is never cut in two. Typing sends a typing indicator
 * (at most one per TYPING_REFRESH_MS, and a stop after TYPING_IDLE_MS of
 * quiet). A line sent prints nothing more: the typed line stays on screen;
 * only what is unusual (queued, held back, an error) is said. An error
 * in a command is shown and the chat goes on.
 */
import { resolve } from 'node:path';
import { type Interface, clearLine, createInterface, cursorTo } from 'node:readline';
import { fileToSend } from './attachments.ts';
import { type Ctx, UsageError, describeError, sendOrQueue, target } from './commands.ts';
import type { Out } from './device-socket.ts';
import { byMessageTime, formatStored, nameOf } from './format.ts';
import { REPORT_HELP, ReportDialog } from './report.ts';

/** How often "typing" is sent again while the user keeps typing. */
const TYPING_REFRESH_MS = 5_000;
/** Quiet time after which "stopped typing" is sent. */
const TYPING_IDLE_MS = 6_000;
/** Messages of the conversation shown when the chat opens. */
const HISTORY_SHOWN = 20;

const CHAT_HELP = `  /file <path> [caption]   send a file
  /timer <seconds>         disappearing messages (0 = off)
  /verify                  mark this contact verified (after comparing safety numbers)
  /reconnect               take the connection back (after another program took it)
${REPORT_HELP}
  /quit                    leave the chat`;

/** Prints above the prompt, keeping what the user is typing. */
function promptOut(rl: Interface, stream: NodeJS.WriteStream): Out {
  const write = (text: string) => {
    clearLine(stream, 0);
    cursorTo(stream, 0);
    stream.write(`${text}\n`);
    rl.prompt(true);
  };
  return { print: write, error: write };
}

export async function chat(ctx: Ctx, name: string): Promise<number> {
  const { client } = ctx.session;
  const conversation = target(client, name);
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  for (const m of byMessageTime(client.history(conversation, HISTORY_SHOWN))) ctx.out.print(formatStored(client, m));
  const rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
  rl.setPrompt(`${nameOf(client, conversation)}> `);
  const out = tty ? promptOut(rl, process.stdout) : ctx.out;
  ctx.process.setOut(out);
  ctx.process.watchQueued(conversation);
  await client.markRead(conversation).catch(() => undefined);
  out.print(`chatting with ${nameOf(client, conversation)}: type a message and Enter; /help for commands`);

  let typingSince = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const stopTyping = (send: boolean) => {
    clearTimeout(idle);
    idle = undefined;
    if (typingSince && send) void client.setTyping(conversation, false);
    typingSince = 0;
  };
  if (tty) {
    process.stdin.on('keypress', (_s, key: { name?: string } | undefined) => {
      if (key?.name === 'return' || key?.name === 'enter') return;
      const now = Date.now();
      if (now - typingSince > TYPING_REFRESH_MS) {
        typingSince = now;
        void client.setTyping(conversation, true);
      }
      clearTimeout(idle);
      idle = setTimeout(() => stopTyping(true), TYPING_IDLE_MS);
    });
  }

  const reports = new ReportDialog(client, conversation, out);
  const handle = async (line: string): Promise<boolean> => {
    // "send this report? (yes/no)": the answer is never sent as a message.
    if (reports.waiting) {
      await reports.answer(line);
      return true;
    }
    if (line === '/quit' || line === '/exit') return false;
    if (line === '/help') out.print(CHAT_HELP);
    else if (line === '/file' || line.startsWith('/file ')) {
      const [path, ...caption] = line.slice(5).trim().split(' ');
      if (!path) throw new UsageError('usage: /file <path> [caption]');
      const file = await fileToSend(resolve(ctx.cwd, path));
      out.print(`  (sending ${file.fileName}…)`);
      if (
        await sendOrQueue(
          { ...ctx, out },
          conversation,
          () => client.sendFile(conversation, { ...file, caption: caption.join(' ') }),
          'file',
        )
      )
        out.print(`  (file ${file.fileName} sent)`);
    } else if (line.startsWith('/timer')) {
      const seconds = Number(line.slice(6).trim());
      if (!Number.isSafeInteger(seconds) || seconds < 0) throw new UsageError('usage: /timer <seconds> (0 = off)');
      await client.setExpireTimer(conversation, seconds);
      out.print(`  (disappearing messages: ${seconds ? `${seconds} s` : 'off'})`);
    } else if (line === '/verify') {
      if (conversation.startsWith('g.')) throw new UsageError('verify a person, not a group');
      client.verifySafetyNumber(conversation);
      out.print(`  (${nameOf(client, conversation)} is marked verified)`);
    } else if (line === '/report' || line.startsWith('/report ')) {
      reports.command(line.slice('/report'.length));
    } else if (line === '/reconnect') {
      await client.start();
      out.print('  (connected again)');
    } else if (line.startsWith('/')) {
      throw new UsageError(`unknown chat command ${line.split(' ')[0]} (/help lists them)`);
    } else {
      await sendOrQueue({ ...ctx, out }, conversation, () => client.sendText(conversation, line), 'message');
    }
    return true;
  };

  // In raw mode Ctrl-C is a key, not a signal: it leaves the chat (files still downloading finish first).
  rl.on('SIGINT', () => rl.close());
  rl.prompt();
  const lines = (async () => {
    for await (const raw of rl) {
      const line = raw.trim();
      // Enter ends the typing run: a message tells the peer by arriving; a
      // chat command (or an empty line) sends "stopped", so the next keypress
      // starts a fresh indicator instead of waiting out TYPING_REFRESH_MS.
      stopTyping(!line || line.startsWith('/'));
      if (line) {
        try {
          if (!(await handle(line))) break;
        } catch (e) {
          // The chat goes on: a typo'd path or a file too large is a line of text, not an exit.
          out.error(`error: ${describeError(e)}`);
        }
      }
      rl.prompt();
    }
  })();
  // Ctrl-C, or stdin closed, ends the chat too.
  await Promise.race([lines, new Promise<void>((r) => rl.once('close', () => r()))]);
  stopTyping(true);
  rl.close();
  if (tty) process.stdout.write('\n');
  return 0;
}

/**
 * The CLI's commands: each with its arguments, one line of help and an
 * example (what `parley help <command>` prints), and what it does on an
 * open client. The same table runs commands typed here and commands another
 * `parley` process forwards to a running chat (device-socket.ts).
 */
import { resolve } from 'node:path';
import type { ParleyClient } from '../client.ts';
import { isClientError } from '../errors.ts';
import { messageIdText, parseAccountId } from '../state/ids.ts';
import { fileToSend } from './attachments.ts';
import type { Out } from './device-socket.ts';
import type { Downloads } from './downloads.ts';
import { byMessageTime, formatStored, nameOf } from './format.ts';
import type { Home, Session } from './home.ts';

export class UsageError extends Error {}

export interface Ctx {
  readonly session: Session;
  readonly home: Home;
  readonly out: Out;
  /** The directory the user typed the command in (paths are relative to it). */
  readonly cwd: string;
  readonly caption: string | undefined;
  readonly downloads: Downloads;
  /** Set when a chat or listen already keeps this home online (the command was forwarded to it). */
  readonly live: string | null;
  /** Display and input of the running process, for `chat` and `listen`. */
  readonly process: {
    setOut(out: Out): void;
    /** Where events print now. */
    out(): Out;
    watchQueued(conversation: string): void;
  };
}

export interface Command {
  readonly name: string;
  readonly args: string;
  /** How many arguments at least. */
  readonly min: number;
  readonly summary: string;
  readonly example: string;
  /** Stays online (chat, listen): other processes for this home forward their commands to it. */
  readonly live?: boolean;
  /** Runs without an open account (register, link). */
  readonly setup?: boolean;
  /** Talks to the relay: connects first. */
  readonly online?: boolean;
  readonly run?: (ctx: Ctx, args: string[]) => Promise<number | undefined> | number | undefined;
}

/** A contact name, a group name, an account id or a group conversation id, as a conversation id. */
export function target(client: ParleyClient, name: string): string {
  const contact = client.resolveName(name);
  if (contact) return contact;
  const group = client.groups().find((g) => g.name === name.replace(/^#/, '') || g.conversation === name);
  if (group) return group.conversation;
  try {
    parseAccountId(name);
    return name;
  } catch {
    throw new UsageError(`unknown contact or group: ${name} (add it with: parley add <account-id> ${name})`);
  }
}

function accountOf(client: ParleyClient, name: string): string {
  const id = target(client, name);
  if (id.startsWith('g.')) throw new UsageError(`${name} is a group, not a person`);
  return id;
}

function groupsOf5(digits: string): string {
  return (digits.match(/.{1,5}/g) ?? []).join(' ');
}

function size(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

/** An error as one line a person can act on: which file is missing, which limit a file broke. */
export function describeError(e: unknown): string {
  const err = e as { code?: string; path?: string; message?: string; details?: Record<string, unknown> };
  if (err.code === 'ENOENT') return `no such file: ${err.path ?? ''}`;
  if (err.code === 'EISDIR') return `that is a folder, not a file: ${err.path ?? ''}`;
  if (err.code === 'EACCES') return `not allowed to read ${err.path ?? 'the file'}`;
  if (isClientError(e, 'RELAY_REFUSED') && e.details['relayCode'] === 'PAYLOAD_TOO_LARGE') {
    const limit = e.details['limit'];
    return typeof limit === 'number'
      ? `too large: this relay takes files up to ${size(limit)} (${limit} bytes, encrypted)`
      : 'too large for this relay';
  }
  return err.message ?? String(e);
}

/**
 * Sends, and says so only when something is unusual: a message the relay
 * could not take now is queued (announced again when it goes out).
 */
export async function sendOrQueue(ctx: Ctx, conversation: string, send: () => Promise<unknown>, what: string): Promise<boolean> {
  try {
    await send();
    return true;
  } catch (e) {
    if (isClientError(e, 'RELAY_UNAVAILABLE')) {
      ctx.out.print(`${what}: the relay is unreachable; queued, it goes out when the relay is back`);
      ctx.process.watchQueued(conversation);
      return false;
    }
    if (isClientError(e, 'UNTRUSTED_DEVICE')) {
      ctx.out.print(`${what}: held back: ${(e as Error).message}`);
      return false;
    }
    throw e;
  }
}

export const COMMANDS: readonly Command[] = [
  {
    name: 'register',
    args: '',
    min: 0,
    summary: 'create an account; this home directory becomes its first device',
    example: 'parley --home ~/.parley-alice register',
    setup: true,
  },
  {
    name: 'link',
    args: '',
    min: 0,
    summary: 'make this home a new device of an account you have: prints a request, then reads the answer',
    example: 'parley --home ~/.parley-laptop link',
    setup: true,
  },
  {
    name: 'id',
    args: '',
    min: 0,
    summary: 'show your account id (what contacts add) and this device',
    example: 'parley id',
    run: ({ session: { client }, home, out }) => {
      out.print(`${client.accountId}  (device ${client.deviceId}${client.isPrimary ? ', primary' : ''}, relay ${home.relay})`);
      return 0;
    },
  },
  {
    name: 'add',
    args: '<account-id> <name>',
    min: 2,
    summary: 'add a contact (or rename one); your linked devices learn it too',
    example: 'parley add 3q2-7wW1jX0PbI2x3hqG8k0XnYcK4p7WZ6dDGwb9uVw bob',
    online: true,
    run: async ({ session: { client }, out }, [id, name]) => {
      await client.addContact(id as string, name as string);
      // The contact goes to our linked devices now, not at the next command.
      await client.flush().catch(() => undefined);
      out.print(`added ${name}; safety number: ${groupsOf5(client.safetyNumber(id as string).digits)}`);
      out.print(`compare it with ${name} in person or on a call, then: parley verify ${name}`);
      return 0;
    },
  },
  {
    name: 'contacts',
    args: '',
    min: 0,
    summary: 'list contacts, with a mark for the verified ones',
    example: 'parley contacts',
    run: ({ session: { client }, out }) => {
      for (const c of client.contacts()) out.print(`${c.name.padEnd(16)} ${c.account}${c.verified ? '  (verified)' : ''}`);
      return 0;
    },
  },
  {
    name: 'safety',
    args: '<name>',
    min: 1,
    summary: 'the 60-digit safety number to compare with a contact',
    example: 'parley safety bob',
    run: ({ session: { client }, out }, [name]) => {
      out.print(groupsOf5(client.safetyNumber(accountOf(client, name as string)).digits));
      return 0;
    },
  },
  {
    name: 'verify',
    args: '<name>',
    min: 1,
    summary: 'mark a contact verified, after you compared safety numbers (your linked devices learn it too)',
    example: 'parley verify bob',
    online: true,
    run: async ({ session: { client }, out }, [name]) => {
      const id = accountOf(client, name as string);
      if (!client.contacts().some((c) => c.account === id)) throw new UsageError(`${name} is not a contact yet`);
      client.verifySafetyNumber(id);
      await client.flush().catch(() => undefined);
      out.print(`${nameOf(client, id)} is marked verified`);
      return 0;
    },
  },
  {
    name: 'chat',
    args: '<name|#group>',
    min: 1,
    summary: 'chat interactively (/file <path> [caption], /timer <seconds>, /verify, /help, /quit)',
    example: 'parley chat bob',
    live: true,
    online: true,
  },
  {
    name: 'send',
    args: '<to> <text...>',
    min: 2,
    summary: 'send one message to a contact or group',
    example: 'parley send bob "see you at 8"',
    online: true,
    run: async (ctx, args) => {
      const { client } = ctx.session;
      const to = target(client, args[0] as string);
      if (await sendOrQueue(ctx, to, () => client.sendText(to, args.slice(1).join(' ')), 'message')) ctx.out.print('message: sent');
      return 0;
    },
  },
  {
    name: 'send-file',
    args: '<to> <path> [--caption <text>]',
    min: 2,
    summary: 'send a file (streamed and encrypted; a video, a photo, anything)',
    example: 'parley send-file bob ./holiday.mp4 --caption "the beach"',
    online: true,
    run: async (ctx, args) => {
      const { client } = ctx.session;
      const to = target(client, args[0] as string);
      const file = await fileToSend(resolve(ctx.cwd, args[1] as string));
      if (await sendOrQueue(ctx, to, () => client.sendFile(to, { ...file, caption: ctx.caption ?? '' }), 'file'))
        ctx.out.print('file: sent');
      return 0;
    },
  },
  {
    name: 'inbox',
    args: '',
    min: 0,
    summary: 'fetch what waits, print it, save its files (waits until every file is saved)',
    example: 'parley inbox',
    online: true,
  },
  {
    name: 'listen',
    args: '',
    min: 0,
    summary: 'stay online and print everything as it arrives (Ctrl-C to stop)',
    example: 'parley listen',
    live: true,
    online: true,
  },
  {
    name: 'history',
    args: '<name|#group> [count]',
    min: 1,
    summary: 'show a conversation, by the time messages were written',
    example: 'parley history bob 50',
    run: ({ session: { client }, out }, [name, count]) => {
      const limit = count === undefined ? undefined : Number(count);
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw new UsageError('[count] expected a positive number');
      for (const m of byMessageTime(client.history(target(client, name as string), limit))) out.print(formatStored(client, m));
      return 0;
    },
  },
  {
    name: 'download',
    args: '<name|#group> [message-id]',
    min: 1,
    summary: 'download a received file again (the latest one, or by message id) while the relay still holds it',
    example: 'parley download bob',
    online: true,
    run: async ({ session: { client }, out }, [name, id]) => {
      const conversation = target(client, name as string);
      const files = client.history(conversation).filter((m) => m.content.body.type === 'attachment');
      const found = id === undefined ? files.at(-1) : files.find((m) => messageIdText(m.content.messageId) === id);
      if (!found) throw new UsageError(id ? `no file with message id ${id} in this conversation` : 'no file in this conversation');
      out.print(`  saved to ${await client.saveAttachment(conversation, messageIdText(found.content.messageId))}`);
      return 0;
    },
  },
  {
    name: 'groups',
    args: '',
    min: 0,
    summary: 'list groups and their members',
    example: 'parley groups',
    run: ({ session: { client }, out }) => {
      for (const g of client.groups()) out.print(`#${g.name.padEnd(16)} ${g.members.map((m) => nameOf(client, m)).join(', ')}`);
      return 0;
    },
  },
  {
    name: 'group',
    args: 'create <name> <member...> | add|remove|admin|unadmin <group> <member...> | list',
    min: 1,
    summary: 'make a group, or change its members and admins (who may change it; admins only)',
    example: 'parley group create climbing bob carol',
    online: true,
    run: async ({ session: { client }, out }, [sub, name, ...members]) => {
      if (sub === 'list') {
        for (const g of client.groups()) out.print(`#${g.name}`);
      } else if (sub === 'create') {
        if (!name || members.length === 0) throw new UsageError('usage: parley group create <name> <member...>');
        await client.createGroup(
          name,
          members.map((m) => accountOf(client, m)),
        );
        await client.flush().catch(() => undefined);
        out.print(`created #${name}`);
      } else if (sub === 'add' || sub === 'remove' || sub === 'admin' || sub === 'unadmin') {
        if (!name || members.length === 0) throw new UsageError(`usage: parley group ${sub} <group> <member...>`);
        const ids = members.map((m) => accountOf(client, m));
        const change = { add: { add: ids }, remove: { remove: ids }, admin: { addAdmins: ids }, unadmin: { removeAdmins: ids } }[sub];
        await client.updateGroup(target(client, name), change);
        await client.flush().catch(() => undefined);
        out.print('done');
      } else throw new UsageError(`unknown group command ${sub} (create, add, remove, admin, unadmin, list)`);
      return 0;
    },
  },
  {
    name: 'timer',
    args: '<to> <seconds>',
    min: 2,
    summary: 'disappearing messages in a conversation after this many seconds (0 = off)',
    example: 'parley timer bob 3600',
    online: true,
    run: async ({ session: { client }, out }, [to, seconds]) => {
      const n = Number(seconds);
      if (!Number.isSafeInteger(n) || n < 0) throw new UsageError('<seconds> expected a whole number, 0 or more');
      await client.setExpireTimer(target(client, to as string), n);
      out.print(n ? `messages disappear after ${n} s` : 'disappearing messages off');
      return 0;
    },
  },
  {
    name: 'devices',
    args: '',
    min: 0,
    summary: "list your account's devices",
    example: 'parley devices',
    online: true,
    run: async ({ session: { client }, out }) => {
      for (const d of await client.devices()) out.print(`device ${d.deviceId}${d.current ? ' (this one)' : ''}`);
      return 0;
    },
  },
  {
    name: 'approve',
    args: '<request>',
    min: 1,
    summary: '(primary device) answer a link request from a new device',
    example: 'parley approve pl1-…',
    online: true,
    run: async ({ session: { client }, out }, [request]) => {
      out.print(`paste this on the new device:\n${await client.approveLink(request as string)}`);
      await client.flush().catch(() => undefined);
      return 0;
    },
  },
  {
    name: 'remove-device',
    args: '<device-id>',
    min: 1,
    summary: '(primary device) remove one of your devices',
    example: 'parley remove-device 2',
    online: true,
    run: async ({ session: { client }, out }, [id]) => {
      const n = Number(id);
      if (!Number.isSafeInteger(n) || n < 1) throw new UsageError('<device-id> expected a device number');
      await client.removeDevice(n);
      await client.flush().catch(() => undefined);
      out.print(`removed device ${n}`);
      return 0;
    },
  },
];

export function commandNamed(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export const OPTIONS_HELP = `options: --home <dir>   this device's directory (default ~/.parley or $PARLEY_HOME)
         --relay <url>  the relay (default http://127.0.0.1:8787 or $PARLEY_RELAY; remembered per home)`;

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: parley [--home <dir>] [--relay <url>] <command> [args]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    OPTIONS_HELP,
    'parley help <command> shows its arguments and an example.',
  ].join('\n');
}

export function commandHelp(c: Command): string {
  return [`usage: parley ${c.name}${c.args ? ` ${c.args}` : ''}`, `  ${c.summary}`, 'example:', `  ${c.example}`].join('\n');
}

/**
 * `parley`: a command-line chat on the SDK. spec/10-client.md §11; the
 * README's "Command-line chat" walks through it.
 *
 *   parley register                      create an account (this directory = this device)
 *   parley id                            show your account id
 *   parley add <account-id> <name>       add a contact
 *   parley chat <name|group>             chat interactively (/file <path>, /timer <s>, /quit)
 *   parley send <to> <text...>           send one message
 *   parley send-file <to> <path>         send a file (streamed, encrypted)
 *   parley inbox                         fetch what waits, print it, save files
 *   parley listen                        stay online and print everything
 *   parley history <to>                  show a conversation
 *   parley contacts | groups | devices   list
 *   parley safety <name>                 the safety number to compare
 *   parley group create <name> <member...>   make a group
 *   parley group add|remove <group> <member...>
 *   parley group admin|unadmin <group> <member...>   who may change the group (admins only)
 *   parley timer <to> <seconds>          disappearing messages (0 = off)
 *   parley link                          (new device) print a link request, then paste the answer
 *   parley approve <request>             (primary device) answer a link request
 *   parley remove-device <id>            (primary device) remove one of your devices
 *
 * Options: --home <dir> (default ~/.parley or $PARLEY_HOME), --relay <url>
 * (default http://127.0.0.1:8787 or $PARLEY_RELAY; remembered per home).
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { ParleyClient } from '../client.ts';
import { isClientError } from '../errors.ts';
import { parseAccountId } from '../ids.ts';
import { fileToSend } from './attachments.ts';
import { formatEvent, formatStored, nameOf } from './format.ts';
import { type Home, type Session, completeLink, linkRequest, openClient, openHome, registerClient } from './home.ts';

const USAGE = `usage: parley [--home <dir>] [--relay <url>] <command> [args]
commands: register, id, add, contacts, chat, send, send-file, inbox, listen, history,
          safety, group (create|add|remove|list), groups, timer, devices, link, approve, remove-device`;

class UsageError extends Error {}

function need(args: string[], n: number, what: string): void {
  if (args.length < n) throw new UsageError(`missing ${what}`);
}

/** A contact name, a group name, an account id or a group conversation id, as a conversation id. */
function target(client: ParleyClient, name: string): string {
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

/** Prints incoming messages (saving attachments) until the returned function is called. */
function follow(session: Session, home: Home, options: { markRead?: string }): () => void {
  const { client } = session;
  const offs = [
    client.on('message', (m) => {
      console.log(formatEvent(client, m));
      if (m.body.type === 'attachment' && !m.outgoing) {
        client.saveAttachment(m.conversation, m.messageId).then(
          (path) => console.log(`  saved to ${path}`),
          (e) => console.log(`  could not save the file: ${(e as Error).message}`),
        );
      }
      if (options.markRead && m.conversation === options.markRead && !m.outgoing)
        void client.markRead(m.conversation).catch(() => undefined);
    }),
    client.on('receipt', (r) => {
      if (r.status === 'read') console.log(`  (${nameOf(client, r.from)} read your message)`);
    }),
    client.on('typing', (t) => {
      if (t.typing) console.log(`  (${nameOf(client, t.from.account)} is typing)`);
    }),
    client.on('group-change', (g) =>
      console.log(`  (group ${g.name}: ${g.members.length} members; +${g.added.length} -${g.removed.length})`),
    ),
    client.on('devices-change', (d) => console.log(`  (${nameOf(client, d.account)} devices changed: +[${d.added}] -[${d.removed}])`)),
    client.on('safety-number-change', (s) => console.log(`  (!) ${s.name} now points at another account: compare safety numbers again`)),
    client.on('timer-change', (t) =>
      console.log(`  (disappearing messages in ${nameOf(client, t.conversation)}: ${t.expireTimer ? `${t.expireTimer} s` : 'off'})`),
    ),
    client.on('untrusted-device', (u) =>
      console.log(
        `  (!) the relay lists a device ${u.deviceId} of ${nameOf(client, u.account)} that the account did not certify (${u.reason}); refused`,
      ),
    ),
    client.on('undecryptable', (u) =>
      console.log(
        `  (a message from ${nameOf(client, u.sender.account)} could not be decrypted; ${u.retryRequested ? 'asked for it again' : 'dropped'})`,
      ),
    ),
  ];
  return () => {
    for (const off of offs) off();
  };
}

async function untilDrained(client: ParleyClient, ms = 10_000): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    const off = client.on('connection', (c) => {
      if (c.state === 'drained') done();
    });
    function done() {
      clearTimeout(timer);
      off();
      resolve();
    }
  });
}

async function sendOrQueue(promise: Promise<unknown>, what: string): Promise<void> {
  try {
    await promise;
    console.log(`${what}: sent`);
  } catch (e) {
    if (isClientError(e, 'RELAY_UNAVAILABLE')) console.log(`${what}: the relay is unreachable; queued, it goes out next time parley runs`);
    else if (isClientError(e, 'UNTRUSTED_DEVICE')) console.log(`${what}: held back: ${(e as Error).message}`);
    else throw e;
  }
}

async function chat(session: Session, home: Home, name: string): Promise<void> {
  const { client } = session;
  const conversation = target(client, name);
  for (const m of client.history(conversation, 20)) console.log(formatStored(client, m));
  const stop = follow(session, home, { markRead: conversation });
  await client.start();
  await client.markRead(conversation).catch(() => undefined);
  console.log(`chatting with ${nameOf(client, conversation)}: type a message, /file <path> [caption], /timer <seconds>, /quit`);
  const rl = createInterface({ input: process.stdin, terminal: false });
  for await (const raw of rl) {
    const line = raw.trim();
    if (!line) continue;
    if (line === '/quit' || line === '/exit') break;
    if (line.startsWith('/file ')) {
      const [path, ...caption] = line.slice(6).trim().split(' ');
      await sendOrQueue(client.sendFile(conversation, { ...fileToSend(path as string), caption: caption.join(' ') }), `file ${path}`);
    } else if (line.startsWith('/timer ')) {
      await client.setExpireTimer(conversation, Number(line.slice(7)));
      console.log(`  (disappearing messages: ${Number(line.slice(7)) || 'off'})`);
    } else {
      await sendOrQueue(client.sendText(conversation, line), 'message').catch((e) => console.log(`error: ${(e as Error).message}`));
    }
  }
  rl.close();
  stop();
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { home: { type: 'string' }, relay: { type: 'string' }, caption: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  const [command, ...args] = positionals;
  if (!command || values.help) {
    console.log(USAGE);
    return values.help ? 0 : 1;
  }
  const home = openHome(values.home, values.relay);

  if (command === 'register') {
    const s = await registerClient(home);
    console.log(`registered on ${home.relay}\nyour account id (give it to your contacts):\n  ${s.client.accountId}`);
    await s.close();
    return 0;
  }
  if (command === 'link') {
    console.log(`on your primary device run:\n  parley approve ${linkRequest(home)}\nthen paste its answer here:`);
    const rl = createInterface({ input: process.stdin, terminal: false });
    const answer = await new Promise<string>((resolve) => rl.once('line', resolve));
    rl.close();
    const s = await completeLink(home, answer);
    console.log(
      `linked as device ${s.client.deviceId} of account\n  ${s.client.accountId}\n(check that the primary device shows the same id)`,
    );
    await s.close();
    return 0;
  }

  const s = await openClient(home);
  const { client } = s;
  try {
    switch (command) {
      case 'id':
        console.log(`${client.accountId}  (device ${client.deviceId}${client.isPrimary ? ', primary' : ''}, relay ${home.relay})`);
        break;
      case 'add':
        need(args, 2, '<account-id> <name>');
        await client.addContact(args[0] as string, args[1] as string);
        console.log(`added ${args[1]}; safety number: ${groupsOf5(client.safetyNumber(args[0] as string).digits)}`);
        break;
      case 'contacts':
        for (const c of client.contacts()) console.log(`${c.name.padEnd(16)} ${c.account}${c.verified ? '  (verified)' : ''}`);
        break;
      case 'safety': {
        need(args, 1, '<name>');
        console.log(groupsOf5(client.safetyNumber(accountOf(client, args[0] as string)).digits));
        break;
      }
      case 'send':
        need(args, 2, '<to> <text>');
        await client.start();
        await sendOrQueue(client.sendText(target(client, args[0] as string), args.slice(1).join(' ')), 'message');
        break;
      case 'send-file':
        need(args, 2, '<to> <path>');
        await client.start();
        await sendOrQueue(
          client.sendFile(target(client, args[0] as string), { ...fileToSend(args[1] as string), caption: values.caption ?? '' }),
          'file',
        );
        break;
      case 'inbox': {
        const stop = follow(s, home, {});
        await client.start();
        await untilDrained(client);
        await client.flush().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 300));
        stop();
        break;
      }
      case 'listen': {
        follow(s, home, {});
        await client.start();
        console.log(`listening as ${client.accountId.slice(0, 8)}… (Ctrl-C to stop)`);
        await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
        break;
      }
      case 'chat':
        need(args, 1, '<name|group>');
        await chat(s, home, args[0] as string);
        break;
      case 'history':
        need(args, 1, '<to>');
        for (const m of client.history(target(client, args[0] as string))) console.log(formatStored(client, m));
        break;
      case 'groups':
        for (const g of client.groups()) console.log(`#${g.name.padEnd(16)} ${g.members.map((m) => nameOf(client, m)).join(', ')}`);
        break;
      case 'group': {
        const [sub, name, ...members] = args;
        if (sub === 'list' || sub === undefined) {
          for (const g of client.groups()) console.log(`#${g.name}`);
        } else if (sub === 'create') {
          need(args, 3, 'create <name> <member...>');
          await client.start();
          await client.createGroup(
            name as string,
            members.map((m) => accountOf(client, m)),
          );
          await client.flush().catch(() => undefined);
          console.log(`created #${name}`);
        } else if (sub === 'add' || sub === 'remove' || sub === 'admin' || sub === 'unadmin') {
          need(args, 3, `${sub} <group> <member...>`);
          await client.start();
          const ids = members.map((m) => accountOf(client, m));
          const change = { add: { add: ids }, remove: { remove: ids }, admin: { addAdmins: ids }, unadmin: { removeAdmins: ids } }[sub];
          await client.updateGroup(target(client, name as string), change);
          await client.flush().catch(() => undefined);
          console.log('done');
        } else throw new UsageError(`unknown group command ${sub}`);
        break;
      }
      case 'timer':
        need(args, 2, '<to> <seconds>');
        await client.start();
        await client.setExpireTimer(target(client, args[0] as string), Number(args[1]));
        console.log('done');
        break;
      case 'devices':
        for (const d of await client.devices()) console.log(`device ${d.deviceId}${d.current ? ' (this one)' : ''}`);
        break;
      case 'approve':
        need(args, 1, '<request>');
        await client.start();
        console.log(`paste this on the new device:\n${await client.approveLink(args[0] as string)}`);
        await client.flush().catch(() => undefined);
        break;
      case 'remove-device':
        need(args, 1, '<device-id>');
        await client.start();
        await client.removeDevice(Number(args[0]));
        await client.flush().catch(() => undefined);
        console.log(`removed device ${args[0]}`);
        break;
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } finally {
    await s.close();
  }
  return 0;
}

function groupsOf5(digits: string): string {
  return (digits.match(/.{1,5}/g) ?? []).join(' ');
}

/** Runs the CLI and exits with its status; errors print without stack traces (they never carry secrets). */
export async function runCli(argv: string[]): Promise<never> {
  try {
    process.exit(await main(argv));
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      console.error(`${(e as Error).message}\n${USAGE}`);
    else console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  }
}

// Executed directly (npm run parley: node --import tsx packages/client/src/cli/main.ts).
if (process.argv[1] && /cli[\\/]main\.ts$/.test(process.argv[1])) void runCli(process.argv.slice(2));

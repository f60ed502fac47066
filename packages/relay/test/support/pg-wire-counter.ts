// A loopback TCP proxy in front of PostgreSQL that counts what the relay
// asks of the server, from the wire protocol itself (so it counts what
// really travels, whatever the driver does): round trips, statements and
// explicit transactions. Used to pin the round trips per send
// (pg-round-trips.test.ts); it parses only message framing, never rewrites.
//
// A round trip is a request sent while its connection waited for nothing:
// requests end with Sync ('S', extended protocol) or are one Query ('Q',
// simple protocol), and each is answered by one ReadyForQuery ('Z'). A
// request written while earlier ones are unanswered (pipelined) rides on
// the round trip already under way.
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

export interface WireCounts {
  /** Requests sent while their connection had none outstanding. */
  roundTrips: number;
  /** Statements executed: one per Execute ('E') and one per simple Query ('Q'). */
  statements: number;
  /**
   * Transactions ended on the server: a ReadyForQuery back to idle after a
   * request that executed something (an autocommit statement, a COMMIT or a
   * ROLLBACK). The figure pg_stat_database counts as xact_commit.
   */
  transactions: number;
  /** The first words of each round trip's first statement, to see where they go. */
  readonly kinds: Map<string, number>;
}

/** SSLRequest and GSSENCRequest: untyped, and answered with one untyped byte. */
const NEGOTIATION_CODES = new Set([80877103, 80877104]);

/** Statement text → a short label: its first keywords (and the table a write names). */
function kindOf(sql: string): string {
  const words = sql.replace(/\s+/g, ' ').trim().split(' ');
  const head = (words[0] ?? '').toUpperCase();
  if (head === 'INSERT' || head === 'DELETE') return `${head} ${words[2] ?? ''}`;
  if (head === 'UPDATE') return `UPDATE ${words[1] ?? ''}`;
  if (head === 'WITH') return `WITH ${words[1] ?? ''}`;
  if (head === 'SELECT') {
    const from = /\bFROM ([a-z_]+)/i.exec(sql);
    if (/pg_notify/.test(sql)) return 'SELECT pg_notify';
    return `SELECT ${from?.[1] ?? words[1] ?? ''}`;
  }
  return head;
}

class Tally {
  readonly counts: WireCounts = { roundTrips: 0, statements: 0, transactions: 0, kinds: new Map() };
  reset(): void {
    this.counts.roundTrips = 0;
    this.counts.statements = 0;
    this.counts.transactions = 0;
    this.counts.kinds.clear();
  }
}

/** Splits a byte stream into protocol messages: [type, body]; the first `untyped` messages have no type byte. */
class Framer {
  #buffer: Buffer = Buffer.alloc(0);
  untyped: number;

  constructor(untyped: number) {
    this.untyped = untyped;
  }

  *push(chunk: Buffer): Generator<{ type: string; body: Buffer }> {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    for (;;) {
      const typed = this.untyped === 0;
      const header = typed ? 5 : 4;
      if (this.#buffer.length < header) return;
      const length = this.#buffer.readInt32BE(typed ? 1 : 0);
      const total = (typed ? 1 : 0) + length;
      if (this.#buffer.length < total) return;
      const type = typed ? String.fromCharCode(this.#buffer[0] as number) : '';
      const body = this.#buffer.subarray(header, total);
      this.#buffer = this.#buffer.subarray(total);
      if (!typed) {
        this.untyped--;
        // A negotiation request is followed by the real startup message, also untyped.
        if (body.length >= 4 && NEGOTIATION_CODES.has(body.readInt32BE(0))) this.untyped++;
      }
      yield { type, body };
    }
  }
}

export interface WireCounter {
  /** postgres://… pointing at the proxy, with the target's credentials and database. */
  readonly url: string;
  readonly counts: WireCounts;
  /** Requests sent and not answered yet, over every connection (0: the relay waits for nothing). */
  outstanding(): number;
  reset(): void;
  close(): Promise<void>;
}

/** Starts the proxy in front of `targetUrl` (a postgres:// URL on a TCP host; no TLS). */
export async function startWireCounter(targetUrl: string): Promise<WireCounter> {
  const target = new URL(targetUrl);
  const tally = new Tally();
  const sockets = new Set<Socket>();
  const waiting = new Map<Socket, number>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    let outstanding = 0;
    // Per outstanding request (in order): whether it executed a statement.
    const requests: boolean[] = [];
    let executed = false;
    let statementText = '';
    // Named prepared statements are parsed once per connection: later Binds name them.
    const named = new Map<string, string>();
    const fromClient = new Framer(1);
    client.on('data', (chunk: Buffer) => {
      for (const m of fromClient.push(chunk)) {
        if (m.type === 'P') {
          // Parse: statement name, NUL, query text, NUL, …
          const nameEnd = m.body.indexOf(0);
          statementText = m.body.subarray(nameEnd + 1, m.body.indexOf(0, nameEnd + 1)).toString('utf8');
          if (nameEnd > 0) named.set(m.body.subarray(0, nameEnd).toString('utf8'), statementText);
        }
        if (m.type === 'B') {
          // Bind: portal name, NUL, statement name, NUL, …
          const portalEnd = m.body.indexOf(0);
          const name = m.body.subarray(portalEnd + 1, m.body.indexOf(0, portalEnd + 1)).toString('utf8');
          if (name) statementText = named.get(name) ?? statementText;
        }
        if (m.type === 'Q') statementText = m.body.subarray(0, m.body.length - 1).toString('utf8');
        if (m.type === 'E' || m.type === 'Q') {
          tally.counts.statements++;
          executed = true;
        }
        if (m.type === 'S' || m.type === 'Q') {
          requests.push(executed);
          executed = false;
          if (outstanding === 0) {
            tally.counts.roundTrips++;
            const kind = kindOf(statementText);
            tally.counts.kinds.set(kind, (tally.counts.kinds.get(kind) ?? 0) + 1);
          }
          outstanding++;
          waiting.set(client, outstanding);
        }
      }
      upstream.write(chunk);
    });
    // Server messages are typed from the start, except the one-byte answer to a negotiation request.
    const fromServer = new Framer(0);
    upstream.on('data', (chunk: Buffer) => {
      if (chunk.length === 1 && (chunk[0] === 0x4e || chunk[0] === 0x53) && fromClient.untyped > 0) {
        client.write(chunk);
        return;
      }
      for (const m of fromServer.push(chunk)) {
        if (m.type !== 'Z') continue;
        outstanding = Math.max(0, outstanding - 1);
        waiting.set(client, outstanding);
        // Status 'I': no transaction open any more.
        if (requests.shift() && m.body[0] === 0x49) tally.counts.transactions++;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      waiting.delete(client);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    counts: tally.counts,
    outstanding: () => [...waiting.values()].reduce((a, b) => a + b, 0),
    reset: () => tally.reset(),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

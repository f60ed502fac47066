/**
 * One device, one connection: a home (one device) is used by one process at
 * a time. The relay keeps one websocket per device and closes the older one
 * (4002) when another opens, so two processes on one home would silence
 * each other.
 *
 * The process that opens the home's store listens on `<home>/parley.sock`;
 * holding that socket is the lock. A second `parley` for the same home
 * connects to it instead of opening the store:
 *   - a long-running `chat` or `listen` runs the command for it (in its own
 *     client, on its own connection) and streams the output back;
 *   - a one-shot command answers "busy", and the second process waits,
 *     saying so, until the home is free.
 * The socket lives in the home (mode 0700), so only its owner reaches it.
 *
 * Wire: one JSON request line {argv, cwd}; answer lines {out}, {err},
 * {busy}, and finally {exit}.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Longest request line accepted (argv of one command: a message text is at most 64 KiB). */
export const MAX_REQUEST_BYTES = 256 * 1024;
/** How often a waiting process asks again whether the home is free. */
const WAIT_POLL_MS = 200;
/** Unix socket paths are limited (108 bytes on Linux, 104 on macOS). */
const MAX_SOCKET_PATH = 100;

export interface Request {
  readonly argv: readonly string[];
  readonly cwd: string;
}

/** Where the lines of a command go: the terminal, or a forwarding process. */
export interface Out {
  print(text: string): void;
  error(text: string): void;
}

export type Answer = { kind: 'run'; out: Out; done(code: number): void } | { kind: 'busy'; command: string };

export function socketPath(homeDir: string): string {
  const path = join(homeDir, 'parley.sock');
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
    throw new Error(`the home path is too long for its lock socket (${path}); use a shorter --home`);
  return path;
}

export interface HomeLock {
  /** Serves requests from other processes: `handler` runs one, or says the home is busy. */
  serve(handler: (request: Request, out: Out) => Promise<number> | 'busy', busyWith: () => string): void;
  release(): Promise<void>;
}

/** Takes the home's lock, or returns null when a live process holds it. A socket left by a dead process is removed. */
export async function tryLock(homeDir: string): Promise<HomeLock | null> {
  const path = socketPath(homeDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    const server = createServer();
    const bound = await new Promise<boolean>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(false) : reject(e)));
      server.listen(path, () => resolve(true));
    });
    if (bound) {
      // Only the home's owner may send commands, even if the home's folder is readable by others.
      chmodSync(path, 0o600);
      return lockOn(server, path);
    }
    if (await alive(path)) return null;
    // Nobody answers: the socket file outlived its process.
    try {
      unlinkSync(path);
    } catch {}
  }
  return null;
}

function alive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function lockOn(server: Server, path: string): HomeLock {
  let handler: ((request: Request, out: Out) => Promise<number> | 'busy') | null = null;
  let busyWith = () => 'another command';
  // Requests run one at a time, like commands typed in turn.
  let chain: Promise<unknown> = Promise.resolve();
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => undefined);
    const send = (o: object) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(o)}\n`);
    };
    let length = 0;
    const lines = createInterface({ input: socket });
    // readline re-emits the socket's errors; the socket's own handler above covers them.
    lines.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      length += d.length;
      if (length > MAX_REQUEST_BYTES) socket.destroy();
    });
    lines.once('line', (line) => {
      lines.close();
      let request: Request;
      try {
        const parsed = JSON.parse(line) as { argv?: unknown; cwd?: unknown };
        if (!Array.isArray(parsed.argv) || !parsed.argv.every((a) => typeof a === 'string') || typeof parsed.cwd !== 'string')
          throw new Error();
        request = { argv: parsed.argv as string[], cwd: parsed.cwd };
      } catch {
        socket.destroy();
        return;
      }
      if (!handler) {
        send({ busy: busyWith() });
        socket.end();
        return;
      }
      const run = handler;
      chain = chain.then(async () => {
        const out: Out = { print: (text) => send({ out: text }), error: (text) => send({ err: text }) };
        let code = 1;
        try {
          const result = run(request, out);
          if (result === 'busy') {
            send({ busy: busyWith() });
            return;
          }
          code = await result;
        } catch (e) {
          send({ err: `error: ${(e as Error).message}` });
        }
        send({ exit: code });
        socket.end();
      });
    });
  });
  return {
    serve(h, busy) {
      handler = h;
      busyWith = busy;
    },
    async release() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (existsSync(path)) {
        try {
          unlinkSync(path);
        } catch {}
      }
    },
  };
}

/**
 * Asks the process holding the home to run a command. Resolves with the
 * exit status, or 'busy' (with what it is busy with) when it only holds the
 * home for a one-shot command of its own, or 'gone' when nobody answered.
 */
export function forward(homeDir: string, request: Request, out: Out): Promise<number | { busy: string } | 'gone'> {
  return new Promise((resolve) => {
    const socket = connect(socketPath(homeDir));
    let settled = false;
    const finish = (v: number | { busy: string } | 'gone') => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(v);
    };
    socket.once('error', () => finish('gone'));
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    const lines = createInterface({ input: socket });
    lines.on('error', () => undefined);
    lines.on('line', (line) => {
      let m: { out?: string; err?: string; busy?: string; exit?: number };
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof m.out === 'string') out.print(m.out);
      if (typeof m.err === 'string') out.error(m.err);
      if (typeof m.busy === 'string') finish({ busy: m.busy });
      if (typeof m.exit === 'number') finish(m.exit);
    });
    // The holder died mid-command: report it, the caller may try again.
    socket.once('close', () => finish('gone'));
  });
}

/** Waits a little before asking the home again. */
export function pause(): Promise<void> {
  return new Promise((r) => setTimeout(r, WAIT_POLL_MS));
}

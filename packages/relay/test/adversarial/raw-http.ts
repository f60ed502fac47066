// Raw HTTP/1.1 over a TCP socket, for attacks a well-behaved client library
// cannot express: a body that is declared but never sent, a request line
// trickled byte by byte, thousands of idle connections. Loopback only.
import { type Socket, connect } from 'node:net';

export interface RawConnection {
  readonly socket: Socket;
  /** Everything the relay sent so far. */
  received(): string;
  /** Resolves with the status code of the first response, or null if the socket closes first or `ms` pass. */
  status(ms?: number): Promise<number | null>;
  /** Resolves true once the relay closed the connection (false after `ms`). */
  closed(ms?: number): Promise<boolean>;
  write(data: string | Buffer): boolean;
  destroy(): void;
}

/** Connects to the relay; `from` picks another loopback source address (127.0.0.2, ...) to act as another client. */
export function rawConnect(url: string, from?: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ...(from ? { localAddress: from } : {}) });
    let text = '';
    let ended = false;
    const waiters = new Set<() => void>();
    const poke = () => {
      for (const w of waiters) w();
    };
    socket.on('data', (d) => {
      text += d.toString('latin1');
      poke();
    });
    socket.on('close', () => {
      ended = true;
      poke();
    });
    socket.on('error', () => {});
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => text,
        write: (data) => !socket.destroyed && socket.write(data),
        destroy: () => socket.destroy(),
        status: (ms = 5000) =>
          new Promise((done) => {
            const check = () => {
              const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
              if (m || ended) finish(m ? Number(m[1]) : null);
            };
            const timer = setTimeout(() => finish(null), ms);
            const finish = (v: number | null) => {
              clearTimeout(timer);
              waiters.delete(check);
              done(v);
            };
            waiters.add(check);
            check();
          }),
        closed: (ms = 5000) =>
          new Promise((done) => {
            const check = () => {
              if (ended) finish(true);
            };
            const timer = setTimeout(() => finish(false), ms);
            const finish = (v: boolean) => {
              clearTimeout(timer);
              waiters.delete(check);
              done(v);
            };
            waiters.add(check);
            check();
          }),
      }),
    );
    socket.once('error', reject);
  });
}

/** The request head (request line and headers, ending in the blank line). */
export function head(method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

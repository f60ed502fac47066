/**
 * Connection caps: how many TCP connections the relay keeps open in total
 * and per client address, with room kept for clients that authenticated.
 * spec/09-relay.md §8.2.
 *
 * Every file descriptor is one connection; a client that opens thousands and
 * sends nothing (or one byte a second) would otherwise exhaust them, and
 * signed requests and probes alike would get "connection reset". A new
 * connection is unproven until a request on it authenticates (auth.ts calls
 * `markAuthenticated`) or its websocket does. At a cap, the oldest unproven
 * connection of that address (or, at the total cap, of anyone) is closed to
 * make room, so a flood only ever displaces itself and never an
 * authenticated client; when every connection at the cap is authenticated,
 * the new one is refused instead.
 *
 * This module knows nothing of HTTP: it sees sockets and addresses.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Descriptors kept free for everything but client connections: the SQLite
 * database, its WAL and shared memory, attachment files being written or
 * read, PostgreSQL pool connections, stdio, timers' internals.
 */
export const RESERVED_DESCRIPTORS = 256;

/**
 * The process's open-file limit (Linux, from /proc/self/limits; Node has
 * already raised the soft limit to the hard one), or undefined where it
 * cannot be read.
 */
export function descriptorLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The total cap actually applied: the configured one, lowered to fit the
 * descriptor limit (a cap above it would let a flood reach "too many open
 * files" first, and then nothing, not even the database, can open a file).
 */
export function effectiveMaxConnections(configured: number, limit = descriptorLimit()): number {
  if (limit === undefined) return configured;
  return Math.max(1, Math.min(configured, limit - RESERVED_DESCRIPTORS));
}

export interface ConnectionCaps {
  /** Open connections in total; keep it below the process's file-descriptor limit, minus room for storage and files. */
  readonly maxConnections: number;
  /** Open connections from one client address. */
  readonly maxConnectionsPerAddress: number;
}

export type ConnectionEvent = 'accepted' | 'evicted' | 'refused';

const guards = new WeakMap<Socket, ConnectionGuard>();

/** Marks the connection a request or websocket authenticated on: it is no longer displaced by new connections. */
export function markAuthenticated(socket: Socket | undefined | null): void {
  if (socket) guards.get(socket)?.promote(socket);
}

export class ConnectionGuard {
  readonly #caps: ConnectionCaps;
  readonly #onEvent: (event: ConnectionEvent, reason: 'address' | 'total' | null) => void;
  /** Connections per address (all of them), for the per-address cap. */
  readonly #perAddress = new Map<string, number>();
  /** Unproven connections, oldest first (a Set iterates in insertion order). */
  readonly #unproven = new Set<Socket>();
  readonly #unprovenByAddress = new Map<string, Set<Socket>>();
  #open = 0;

  constructor(caps: ConnectionCaps, onEvent: (event: ConnectionEvent, reason: 'address' | 'total' | null) => void = () => {}) {
    this.#caps = caps;
    this.#onEvent = onEvent;
  }

  /** Guards every connection `server` accepts. */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.admit(socket));
  }

  get open(): number {
    return this.#open;
  }

  admit(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    if ((this.#perAddress.get(address) ?? 0) >= this.#caps.maxConnectionsPerAddress) {
      if (!this.#evictOldest(this.#unprovenByAddress.get(address), 'address')) {
        this.#refuse(socket, 'address');
        return;
      }
    }
    if (this.#open >= this.#caps.maxConnections) {
      if (!this.#evictOldest(this.#unproven, 'total')) {
        this.#refuse(socket, 'total');
        return;
      }
    }
    this.#open++;
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    this.#unproven.add(socket);
    let mine = this.#unprovenByAddress.get(address);
    if (!mine) this.#unprovenByAddress.set(address, (mine = new Set()));
    mine.add(socket);
    guards.set(socket, this);
    socket.once('close', () => this.#forget(socket, address));
    this.#onEvent('accepted', null);
  }

  promote(socket: Socket): void {
    if (!this.#unproven.delete(socket)) return;
    this.#dropUnproven(socket, socket.remoteAddress ?? 'unknown');
  }

  #evictOldest(candidates: Set<Socket> | undefined, reason: 'address' | 'total'): boolean {
    for (const oldest of candidates ?? []) {
      // Counted as closed now, so the new connection fits at once; 'close' comes later.
      this.#forget(oldest, oldest.remoteAddress ?? 'unknown');
      oldest.destroy();
      this.#onEvent('evicted', reason);
      return true;
    }
    return false;
  }

  #refuse(socket: Socket, reason: 'address' | 'total'): void {
    socket.destroy();
    this.#onEvent('refused', reason);
  }

  #forget(socket: Socket, address: string): void {
    if (guards.get(socket) !== this) return;
    guards.delete(socket);
    this.#open--;
    const n = (this.#perAddress.get(address) ?? 1) - 1;
    if (n === 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, n);
    this.#unproven.delete(socket);
    this.#dropUnproven(socket, address);
  }

  #dropUnproven(socket: Socket, address: string): void {
    const mine = this.#unprovenByAddress.get(address);
    if (!mine) return;
    mine.delete(socket);
    if (mine.size === 0) this.#unprovenByAddress.delete(address);
  }
}

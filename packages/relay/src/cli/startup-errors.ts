/**
 * One-line explanations for the ways a relay fails to start that an
 * operator can fix: bad configuration, a port in use, a data directory that
 * cannot be written, a database that cannot be reached. Anything else is a
 * bug and keeps its stack trace.
 *
 * Messages never include the database password: URLs are shown without it.
 */
import type { RelayConfig } from '../config.ts';

/** An operator-facing failure whose message is the whole story (no stack printed). */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** postgres://user@host:port/db, without the password. */
export function redactedDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    return parsed.toString();
  } catch {
    return 'the configured database';
  }
}

const NETWORK_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused (is PostgreSQL running and listening there?)',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ECONNRESET: 'connection reset by the server',
};

/** PostgreSQL SQLSTATEs a misconfigured deployment produces. */
const POSTGRES_CODES: Readonly<Record<string, string>> = {
  '28P01': 'password authentication failed',
  '28000': 'the server refused this role',
  '3D000': 'the database does not exist',
  '42501': 'the role lacks a privilege the relay needs (CREATE on the schema)',
  '53300': 'the server has no free connections',
  '57P03': 'the server is starting up or shutting down',
};

const FILE_CODES: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is not a directory',
  EEXIST: 'exists and is not a directory',
  ENOSPC: 'no space left on the device',
  ENOENT: 'no such file or directory',
};

interface CodedError {
  code?: string;
  syscall?: string;
  message?: string;
  path?: string;
}

/**
 * The one line to print for a startup failure, or undefined for an
 * unexpected error (a bug: print it whole).
 */
export function describeStartupError(error: unknown, config: RelayConfig): string | undefined {
  if (error instanceof StartupError) return error.message;
  const e = (error ?? {}) as CodedError;
  const code = e.code ?? '';
  if (e.syscall === 'listen') {
    const where = `${config.host}:${config.port}`;
    if (code === 'EADDRINUSE')
      return `port ${config.port} on ${config.host} is already in use; stop the other program or set PORT (--port)`;
    if (code === 'EACCES') return `not allowed to listen on ${where} (ports below 1024 need privileges); set PORT (--port)`;
    if (code === 'EADDRNOTAVAIL') return `${config.host} is not an address of this machine; set HOST (--host)`;
    return `cannot listen on ${where}: ${code || e.message}`;
  }
  if (config.databaseUrl !== '') {
    const reason = NETWORK_CODES[code] ?? POSTGRES_CODES[code];
    if (reason) return `cannot use PostgreSQL at ${redactedDatabaseUrl(config.databaseUrl)}: ${reason}`;
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_IOERR_WRITE') {
    return `cannot open ${config.dataDir}/relay.sqlite (${code}); check that the data directory (PARLEY_DATA_DIR) is writable`;
  }
  if (FILE_CODES[code] && typeof e.path === 'string' && e.path.startsWith(config.dataDir)) {
    return `data directory ${config.dataDir}: ${FILE_CODES[code]} (${e.path}); set PARLEY_DATA_DIR (--data-dir) to a writable directory`;
  }
  return undefined;
}

/**
 * The body digest a client declares before its body: `Content-Digest:
 * sha-256=:<base64>:` (RFC 9530). spec/09-relay.md §3.3.
 *
 * The request signature already covers SHA-256 of the body (§3.1); declaring
 * the same digest in a header lets the relay verify the signature before it
 * reads a single body byte, then check the bytes against the digest as they
 * arrive. Without the header the relay must read the body to authenticate,
 * so it reads at most PRE_AUTH_BODY_BYTES (body-limits.ts).
 *
 * This module only parses the header; hashing stays with the crypto provider.
 */
import { relayError } from '../errors.ts';

/** Standard base64 of 32 bytes: 43 characters and one `=`. */
const SHA256_MEMBER = /^sha-256=:([A-Za-z0-9+/]{43}=):$/;
/** Any other RFC 9530 member (`sha-512=:...:`): allowed and ignored. */
const OTHER_MEMBER = /^[a-z][a-z0-9_.*-]{0,31}=:[A-Za-z0-9+/]{0,172}={0,2}:$/;
/** A header longer than this is refused: two algorithms with room to spare. */
const MAX_HEADER_CHARS = 512;

/**
 * The SHA-256 declared in `Content-Digest`, or undefined when the header is
 * absent. A malformed header, or one with two sha-256 members (a second
 * header is joined with a comma by Node), is 400 MALFORMED.
 */
export function declaredSha256(header: string | string[] | undefined): Uint8Array | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text.length > MAX_HEADER_CHARS) throw relayError('MALFORMED', 'Content-Digest: too long');
  let found: Uint8Array | undefined;
  for (const member of text.split(',')) {
    const trimmed = member.trim();
    const m = SHA256_MEMBER.exec(trimmed);
    if (m) {
      if (found) throw relayError('MALFORMED', 'Content-Digest: more than one sha-256 value');
      const bytes = Buffer.from(m[1] as string, 'base64');
      if (bytes.length !== 32 || bytes.toString('base64') !== m[1]) throw relayError('MALFORMED', 'Content-Digest: non-canonical sha-256');
      found = new Uint8Array(bytes);
    } else if (!OTHER_MEMBER.test(trimmed)) {
      throw relayError('MALFORMED', 'Content-Digest: expected sha-256=:<base64>: (RFC 9530)');
    }
  }
  if (!found) throw relayError('MALFORMED', 'Content-Digest: no sha-256 value');
  return found;
}

/** The header value for a body's SHA-256, as clients send it. */
export function contentDigestHeader(sha256: Uint8Array): string {
  return `sha-256=:${Buffer.from(sha256).toString('base64')}:`;
}

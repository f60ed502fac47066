/**
 * HTTP Range for attachment downloads (RFC 9110 §14): one byte range,
 * `bytes=a-b`, `bytes=a-` or `bytes=-n`. spec/09-relay.md §4.5.
 *
 * Several ranges are answered with the whole body (a server may ignore
 * Range); a syntactically valid range that starts past the end is
 * unsatisfiable (416).
 */
export type RangeVerdict =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

const SINGLE = /^bytes=(\d{0,15})-(\d{0,15})$/;

export function parseRange(header: string | undefined, size: number): RangeVerdict {
  if (header === undefined) return { kind: 'full' };
  const m = SINGLE.exec(header.trim());
  // Not one well-formed byte range (several ranges, other units): ignore it.
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

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

/** Digits of any length: a position past 2^53 is still a valid range, just one past the end. */
const SINGLE = /^bytes=(\d*)-(\d*)$/;
/** Longer than any attachment size can be; parsed as "past the end" without losing precision. */
const MAX_DIGITS = 15;

function position(digits: string): number {
  const trimmed = digits.replace(/^0+(?=\d)/, '');
  return trimmed.length > MAX_DIGITS ? Number.MAX_SAFE_INTEGER : Number(trimmed);
}

export function parseRange(header: string | undefined, size: number): RangeVerdict {
  if (header === undefined) return { kind: 'full' };
  const m = SINGLE.exec(header.trim());
  // Not one well-formed byte range (several ranges, other units): ignore it.
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const suffix = position(m[2] as string);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = position(m[1] as string);
  const last = m[2] === '' ? undefined : position(m[2] as string);
  if (last !== undefined && last < start) return { kind: 'full' };
  const end = last === undefined ? size - 1 : Math.min(last, size - 1);
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/**
 * Exponential backoff with full jitter: the n-th retry waits a uniformly
 * random time in [0, min(cap, base * 2^(n-1))], so clients that lost the
 * relay together do not come back together.
 */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

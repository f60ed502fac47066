/** Display helpers: names, times, safety numbers, timer choices. */

/** Disappearing-message choices offered in the UI (seconds; 0 = off). */
export const TIMER_CHOICES: readonly (readonly [number, string])[] = [
  [0, 'off'],
  [30, '30 seconds'],
  [300, '5 minutes'],
  [3600, '1 hour'],
  [86_400, '1 day'],
  [604_800, '1 week'],
];

export function shortId(id: string): string {
  return id.length > 10 ? `${id.slice(0, 8)}…` : id;
}

export function time(ms: number): string {
  const d = new Date(ms);
  const today = new Date();
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === today.toDateString() ? hm : `${d.toLocaleDateString()} ${hm}`;
}

/** 60 digits as 12 groups of 5, as people read them to each other. */
export function digitGroups(digits: string): string[] {
  return digits.match(/.{1,5}/g) ?? [];
}

/** Status marks under an outgoing message. */
export const STATUS_MARK: Record<string, string> = { queued: 'queued', sent: '✓ sent', delivered: '✓✓ delivered', read: '✓✓ read' };

export function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

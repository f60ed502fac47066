/**
 * Downloaded attachments that must disappear with their message.
 * spec/10-client.md §7.4.
 *
 * The SDK does not write files itself (browsers have no file system; apps
 * save where they like), so an app hands it an `AttachmentFiles` (Node:
 * `DownloadFolder` from `@parley/client/node`). Every file saved for a
 * disappearing message is recorded in the `downloads` table before a byte
 * is written, so neither a crash mid-download nor a forgetful app leaves a
 * file behind: upkeep removes each one once its message's timer runs out.
 *
 *   downloads/<expires at, 15 digits>/<sequence, 12 digits>
 *     -> ["parley/client-download", 1, location: tstr]
 *
 * The time is in the key rather than in the store's own expiry, because
 * the store hides expired entries, and these are exactly the ones upkeep
 * must still find.
 */
import { readText } from '../content/fields.ts';
import { asRecord, decodeRecord, encodeRecord } from '../state/record.ts';
import type { ClientStore } from './types.ts';

const TAG = 'parley/client-download';
const SEQUENCE_KEY = 'download-sequence';
/** Longest location kept (a path); far above any real file system's limit (4096 on Linux). */
export const MAX_LOCATION_LENGTH = 8192;

/** Where the app keeps downloaded attachments. */
export interface AttachmentFiles {
  /** Picks a new location for a file the sender named `name` (untrusted: a base name), and claims it. */
  reserve(name: string): Promise<string>;
  /** Writes a verified plaintext stream to `location`; a partial file must not be visible there if the stream errors. */
  write(location: string, data: ReadableStream<Uint8Array>): Promise<void>;
  /** Destroys the file at `location` and any partial copy of it; absent files are fine. */
  remove(location: string): Promise<void>;
}

export interface DownloadRecord {
  readonly key: string;
  readonly location: string;
  readonly expiresAt: number;
}

/** Records a file that must go at `expiresAt`. Returns the record's key. Call before writing the file. */
export function recordDownload(store: ClientStore, location: string, expiresAt: number): string {
  if (location.length === 0 || location.length > MAX_LOCATION_LENGTH)
    throw new RangeError(`"location" expected 1..${MAX_LOCATION_LENGTH} characters`);
  return store.transaction(() => {
    const seqBytes = store.get('identity', SEQUENCE_KEY);
    const seq = seqBytes ? Number(new TextDecoder().decode(seqBytes)) + 1 : 1;
    store.put('identity', SEQUENCE_KEY, new TextEncoder().encode(String(seq)));
    const key = `${String(expiresAt).padStart(15, '0')}/${String(seq).padStart(12, '0')}`;
    store.put('downloads', key, encodeRecord(TAG, [location]));
    return key;
  });
}

export function forgetDownload(store: ClientStore, key: string): void {
  store.delete('downloads', key);
}

/** Recorded files whose time has come (at or before `now`), soonest first. */
export function dueDownloads(store: ClientStore, now: number): DownloadRecord[] {
  const due: DownloadRecord[] = [];
  for (const e of store.list('downloads')) {
    const expiresAt = Number(e.key.slice(0, e.key.indexOf('/')));
    if (expiresAt > now) break; // keys sort by time
    const f = decodeRecord(e.value, TAG, 1);
    due.push({ key: e.key, expiresAt, location: asRecord(TAG, () => readText(f[0], 'location', MAX_LOCATION_LENGTH)) });
  }
  return due;
}

/**
 * Removes every file whose message has disappeared, then its record.
 * A file that cannot be removed keeps its record, so the next round tries
 * again; the failures are returned (with no path: paths may hold a name
 * the sender chose).
 */
export async function sweepDownloads(
  store: ClientStore,
  files: AttachmentFiles,
  now: number,
): Promise<{ removed: number; failed: number }> {
  let removed = 0;
  let failed = 0;
  for (const d of dueDownloads(store, now)) {
    try {
      await files.remove(d.location);
    } catch {
      failed++;
      continue;
    }
    forgetDownload(store, d.key);
    removed++;
  }
  return { removed, failed };
}

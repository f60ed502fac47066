/**
 * One round of upkeep (spec/10-client.md §7): downloaded files of
 * disappeared messages destroyed, expired content swept from the store, the
 * retry window trimmed, prekeys rotated and refilled (which runs the
 * restore check, §7.5), and our device list published again. A job of
 * several steps, each committing on its own: a failure part-way keeps what
 * the earlier steps did, and the next round starts over.
 */
import { pruneSentLog, reexpireSentLog } from '../state/sent-log.ts';
import { type AttachmentFiles, sweepDownloads } from '../store/downloads.ts';
import { publishOwnList } from './directory.ts';
import type { Job } from './run.ts';
import { maintainPreKeys } from './upkeep.ts';
import { maintainTokens } from '../sealed/grants.ts';

/** `restoreChecked` runs once the prekey upkeep (and so the restore check) succeeded. */
export function maintenanceJob(files: AttachmentFiles | null, restoreChecked: () => void): Job<void> {
  return async (ctx) => {
    // Files first: their records are what finds them, and the sweep below then scrubs those records too.
    if (files) {
      const swept = await sweepDownloads(ctx.store, files, ctx.clock());
      // Reported at once, not with the job's events: a later step's failure must not swallow it.
      if (swept.failed)
        ctx.events.emit('warning', {
          code: 'DOWNLOAD_NOT_REMOVED',
          message: `${swept.failed} expired download(s) could not be removed yet`,
        });
    }
    ctx.store.transaction(() => reexpireSentLog(ctx.store));
    ctx.store.sweep(ctx.clock());
    ctx.store.transaction(() => pruneSentLog(ctx.store));
    await maintainPreKeys(ctx);
    restoreChecked();
    // Covers a publication that failed earlier (the relay answers an unchanged list at no cost).
    await publishOwnList(ctx);
    // Grants and refreshes delivery tokens for contacts, and refills the token pool (sealed sender, spec/12 §3).
    await maintainTokens(ctx);
  };
}

/**
 * Attachment records (the bytes live in a BlobStore). spec/09-relay.md §4.5, §8.3.
 */
import { buf, toAttachment } from '../rows.ts';
import type { AttachmentQuota, AttachmentRecord, CreateAttachmentResult } from '../types.ts';
import type { WriteQueries } from './queries.ts';
import { attachmentQuotaVerdict } from './send-checks.ts';
import { type Rule, get } from './step.ts';

/**
 * Records a new upload within the owner's pending limit and stored-bytes
 * quotas; the same request key again returns the first upload. Expired
 * uploads never refuse a new one: over a quota, the account's expired ones
 * are deleted (listed in `purged`) and the quota asked again.
 */
export function* createAttachment(
  q: WriteQueries,
  r: AttachmentRecord,
  requestKey: Uint8Array,
  quota: AttachmentQuota,
): Rule<CreateAttachmentResult> {
  const owner = buf(r.owner.accountKey);
  const key = buf(requestKey);
  yield* get(q.lockUploads(owner));
  const same = yield* get(q.attachmentByRequest(owner, r.owner.deviceId, key));
  if (same) return { status: 'existing', record: toAttachment(same) };
  const refusal = function* (): Rule<CreateAttachmentResult | undefined> {
    const usage = yield* get(q.uploadUsage(owner, r.owner.deviceId));
    if (usage.pending >= quota.maxPending) return { status: 'too-many-uploads' };
    return attachmentQuotaVerdict(r.size, usage.deviceBytes, usage.accountBytes, quota);
  };
  let refused = yield* refusal();
  let purged: string[] = [];
  if (refused) {
    purged = yield* get(q.purgeExpiredUploads(owner, r.createdAt));
    refused = yield* refusal();
  }
  if (refused) return purged.length ? { ...refused, purged } : refused;
  yield* get(q.insertAttachment(r, key));
  return purged.length ? { status: 'created', record: r, purged } : { status: 'created', record: r };
}

/** Records bytes durably received; at the full size the upload completes and takes its final expiry. */
export function* recordUploadProgress(
  q: WriteQueries,
  id: string,
  received: number,
  completeExpiresAt: number,
): Rule<AttachmentRecord | undefined> {
  const row = yield* get(q.attachment(id));
  if (!row) return undefined;
  const complete = received >= row.size;
  const expiresAt = complete ? completeExpiresAt : row.expires_at;
  yield* get(q.setUploadProgress(id, received, complete, expiresAt));
  return toAttachment({ ...row, received, complete, expires_at: expiresAt });
}

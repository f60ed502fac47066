/**
 * Attachments shown inline: each is downloaded, verified and decrypted once
 * by the SDK, and kept as a blob: URL for the page's lifetime (the relay
 * copy expires; the bytes never touch the page's storage).
 */
import type { AttachmentInfo, ParleyClient } from '@parley/client';

/**
 * Largest picture or video loaded without a click: it is held whole in the page's memory as a blob.
 * A phone video of a few minutes fits; a bigger one waits for the user to ask.
 */
export const MAX_INLINE_BYTES = 200 * 1024 * 1024;

export class MediaCache {
  readonly #urls = new Map<string, Promise<string>>();
  constructor(readonly client: ParleyClient) {}

  url(attachment: AttachmentInfo): Promise<string> {
    let url = this.#urls.get(attachment.id);
    if (!url) {
      url = new Response(this.client.openAttachment(attachment))
        .blob()
        .then((blob) => URL.createObjectURL(new Blob([blob], { type: attachment.contentType ?? 'application/octet-stream' })));
      // A failed download may be retried on the next render.
      url.catch(() => this.#urls.delete(attachment.id));
      this.#urls.set(attachment.id, url);
    }
    return url;
  }

  clear(): void {
    for (const url of this.#urls.values()) url.then(URL.revokeObjectURL, () => {});
    this.#urls.clear();
  }
}

export function kindOf(contentType: string | null): 'image' | 'video' | 'file' {
  if (contentType?.startsWith('image/')) return 'image';
  if (contentType?.startsWith('video/')) return 'video';
  return 'file';
}

/**
 * Web streams for the attachment tests: bytes fed in pieces of chosen sizes
 * (so chunk boundaries land anywhere), and a stream read to its end.
 */

/** A stream of `bytes` in pieces of `pieceSizes` bytes, cycling through the list (default: one piece). */
export function streamOf(bytes: Uint8Array, pieceSizes: readonly number[] = [bytes.length || 1]): ReadableStream<Uint8Array> {
  let offset = 0;
  let k = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const size = Math.max(1, pieceSizes[k++ % pieceSizes.length] as number);
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

/** Everything the stream emits, concatenated; rejects as the stream does. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return new Uint8Array(Buffer.concat(parts));
    parts.push(value);
  }
}

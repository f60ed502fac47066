/**
 * The websocket send frame the relay benches decode (spec/09-relay.md §5.4): 8 envelopes of 1 KiB
 * with their certificate hashes, as the load test's generator sends them. One copy for every bench
 * that times a frame's decode, so their figures describe the same input.
 */
import { encodeCbor } from '@parley/core';

export const SEND_FRAME_8X1K = encodeCbor([
  'send',
  1,
  null,
  Array.from({ length: 8 }, (_, i) => [
    new Uint8Array(32).fill(i + 1),
    1,
    `m-${i}`,
    new Uint8Array(1024).map((_, j) => (j * 31 + i) & 0xff),
    new Uint8Array(32).fill(9),
  ]),
]);

/**
 * Byte helpers the SDK uses: core's, re-exported so SDK modules import from one place.
 * `bytesEqual` and `compareBytes` are for public values only; secrets and tags use `constantTimeEqual`.
 */
export { bytesEqual, compareBytes } from '@parley/core';

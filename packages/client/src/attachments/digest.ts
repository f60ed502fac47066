/**
 * Incremental SHA-256 of a ciphertext as it streams by.
 * spec/11-attachments.md §5 (the digest field).
 *
 * Core's crypto folder provides it (the backend offers only one-shot
 * `sha256`, and a video must not have to fit in memory to be hashed): the
 * client imports no primitive of its own.
 */
export { streamingSha256 } from '@parley/core';

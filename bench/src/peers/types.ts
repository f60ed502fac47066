/**
 * What a peer driver hands the suite. Its own module so that the drivers and
 * index.ts (which loads them lazily) do not import each other.
 */
import type { Entry } from '../runner.ts';

/** A peer's entries, and what to release once they have been timed. */
export interface PeerSet {
  readonly entries: readonly Entry[];
  dispose?(): void;
}

/**
 * A random source whose every draw is named before it happens.
 *
 * The vectors must list every random value (private keys, ephemeral keys,
 * ML-KEM seeds and encapsulation randomness) so that a reimplementation
 * needs no RNG hook. Rather than logging anonymous draws and guessing later
 * what they were, the generator announces the draws an API call will make
 * (`run([['alice.accountSeed', 32]], () => Account.generate(p))`); the call
 * must make exactly those draws, in that order, with those lengths, or
 * generation stops. If core ever changes which random values a step uses,
 * the generator fails loudly instead of writing mislabeled vectors.
 *
 * The bytes for a label come from core's deterministic random source seeded
 * with the label, so each value depends only on its own name: adding a draw
 * elsewhere does not shift every later key.
 */
import type { RandomSource } from '@parley/core';
import { deterministicRandom } from '@parley/core/testing';

const SEED_PREFIX = 'parley/test-vectors/v1/';

export type PlannedDraw = readonly [label: string, length: number];

export class LabeledRandom {
  readonly #values = new Map<string, Uint8Array>();
  #plan: PlannedDraw[] = [];

  /** The RandomSource to put in a CryptoProvider. Refuses any unannounced draw. */
  readonly source: RandomSource = (length: number) => {
    const next = this.#plan.shift();
    if (!next) throw new Error(`unannounced random draw of ${length} bytes`);
    const [label, expected] = next;
    if (length !== expected) throw new Error(`draw "${label}": announced ${expected} bytes, code asked for ${length}`);
    return this.value(label, length).slice();
  };

  /** The bytes of a label (drawing them now if the label is new). Labels are unique. */
  value(label: string, length: number): Uint8Array {
    const known = this.#values.get(label);
    if (known) {
      if (known.length !== length) throw new Error(`label "${label}" reused with another length`);
      return known;
    }
    const bytes = deterministicRandom(SEED_PREFIX + label)(length);
    this.#values.set(label, bytes);
    return bytes;
  }

  /** Runs `fn`, which must make exactly the announced draws. */
  run<T>(draws: readonly PlannedDraw[], fn: () => T): T {
    if (this.#plan.length !== 0) throw new Error('nested LabeledRandom.run');
    for (const [label] of draws) if (this.#values.has(label)) throw new Error(`label "${label}" drawn twice`);
    this.#plan = [...draws];
    try {
      const out = fn();
      if (this.#plan.length !== 0) throw new Error(`announced draws not made: ${this.#plan.map(([l]) => l).join(', ')}`);
      return out;
    } finally {
      this.#plan = [];
    }
  }

  /** A value that was drawn earlier under `label`. */
  drawn(label: string): Uint8Array {
    const v = this.#values.get(label);
    if (!v) throw new Error(`no draw named "${label}"`);
    return v;
  }
}

/**
 * Property (issue 11): for any sequence of hostile envelopes from any
 * account, a later legitimate message is delivered and acknowledged, before
 * and after a client restart; and no hostile input reaches the boundary as
 * an untyped error. The sequences are arrays of (attacker, seed) pairs that
 * support/hostile.ts turns into inputs, so fast-check shrinks a failure to
 * the fewest inputs that cause it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sendHostile } from '../support/hostile.ts';
import { ReceiveScene } from '../support/receive-scene.ts';

/** Runs per CI pass: each builds four clients (the slow part) and sends up to 40 inputs. */
const RUNS = Number(process.env.PARLEY_PROPERTY_RUNS ?? 6);

describe('receive loop property', () => {
  it('any hostile sequence from any account: the next legitimate message arrives and everything is acknowledged, before and after a restart', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 0xffffffff })), { minLength: 1, maxLength: 40 }),
        async (inputs) => {
          const scene = await ReceiveScene.create();
          try {
            for (const [who, seed] of inputs) {
              const attacker = scene.attackers[who];
              const target = scene.targets[who];
              if (!attacker || !target) throw new Error('scene has two attackers');
              await sendHostile(attacker, target, seed, scene.firstContacts[who] ?? null);
            }
            await scene.probe();
            await scene.restart();
            // The same sequence again after the restart, then the probe.
            for (const [who, seed] of inputs) {
              await sendHostile(
                scene.attackers[who] as never,
                scene.targets[who] as never,
                seed ^ 0x5bd1e995,
                scene.firstContacts[who] ?? null,
              );
            }
            await scene.probe();
            expect(scene.tally.untyped).toBe(0);
            expect(scene.tally.listenerErrors).toBe(0);
            expect(scene.stuck).toBe(0);
          } finally {
            await scene.close();
          }
        },
      ),
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);
});

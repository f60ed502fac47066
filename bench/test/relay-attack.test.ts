// The relay-under-attack bench (bench/src/relay/attack.ts) still runs end to
// end: a tiny run with the baseline and one attack. No timing assertions
// (figures depend on the machine); it checks the shape and that the
// attacker was answered, and only with refusals.
import { describe, expect, it } from 'vitest';
import { formatAttackTable, runRelayUnderAttack } from '../src/relay/attack.ts';

describe('relay/attack.ts', () => {
  it('measures legitimate traffic with no attack and under large unauthenticated bodies', async () => {
    const r = await runRelayUnderAttack({ phaseSeconds: 1, senders: 2, phases: ['none', 'large-bodies'] });
    expect(r.phases.map((p) => p.attack)).toEqual(['none', 'large-bodies']);
    for (const p of r.phases) {
      expect(p.envelopesPerSecond).toBeGreaterThan(0);
      expect(p.errors).toBe(0);
    }
    const attacker = r.phases[1]?.attacker ?? {};
    expect(attacker['requests']).toBeGreaterThan(0);
    expect(Object.keys(attacker).filter((k) => k.startsWith('status_') && !/^status_(401|413)$/.test(k))).toEqual([]);
    expect(formatAttackTable(r)).toContain('large-bodies');
  }, 60_000);
});

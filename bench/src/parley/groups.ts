/**
 * Parley group scenarios (sender keys). Issue 5 §2. Placeholder until core's
 * group module exists.
 */
import type { Runner } from '../runner.ts';

export async function runParleyGroups(runner: Runner): Promise<void> {
  for (const size of runner.profile.groupSizes) {
    runner.notMeasured(
      {
        section: 'groups',
        subject: 'parley',
        variant: 'node',
        op: `group-message@${size}`,
        label: `group message, N=${size}`,
        groupSize: size,
      },
      'packages/core/src/group is not there yet',
    );
  }
}

/**
 * Prints the plain totals line CI reads ("N passed, N failed, N skipped"),
 * after vitest's own summary. Every test that did not pass or skip counts
 * as failed, and so does a test file that failed without a failed test
 * (it did not load, or one of its hooks threw).
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class TotalsReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      let failedHere = 0;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'skipped' || state === 'pending') skipped++;
        else failedHere++;
      }
      // A file that failed with no failed test of its own (it did not load, or
      // a beforeAll/afterAll hook threw and its tests were skipped) is one failure.
      if (mod.state() === 'failed' && failedHere === 0) failedHere = 1;
      failed += failedHere;
    }
    failed += errors.length;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}

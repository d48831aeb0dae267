// Adds up vitest JSON reports into the one closing line CI reads:
// "N passed, N failed, N skipped". A missing report counts as a failure.
import { existsSync, readFileSync } from "node:fs";

let passed = 0, failed = 0, skipped = 0, missing = 0;
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.log(`no test report at ${file}: that suite did not run to the end`);
    missing++;
    continue;
  }
  const r = JSON.parse(readFileSync(file, "utf8"));
  passed += r.numPassedTests ?? 0;
  // A file that failed to load has no failed tests of its own: count it once.
  const failedTests = r.numFailedTests ?? 0;
  failed += failedTests > 0 ? failedTests : (r.numFailedTestSuites ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed + missing} failed, ${skipped} skipped`);
process.exit(failed + missing > 0 ? 1 : 0);

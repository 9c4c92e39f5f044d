/**
 * Debian's Chromium for the browser suites (dashboard, browser build, playground): where it is, when
 * a suite skips (no Chromium and not in CI, whose .ci/run installs it) and where screenshots go.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const chromiumPath = '/usr/bin/chromium';

const hasChromium = fs.existsSync(chromiumPath);

/** The `skip` option of a browser suite: undefined where Chromium is present, or in CI (then required). */
export const chromiumSkip =
  hasChromium || process.env.CI
    ? undefined
    : `no Chromium at ${chromiumPath} (apt-get install chromium); CI requires it`;

/** Screenshots, kept as test artifacts (git-ignored). */
export const artifacts = path.resolve('test-artifacts');

/** For a suite's before(): fails in CI when Chromium is missing, and makes the artifacts folder. */
export function requireChromium(): void {
  assert.ok(hasChromium, `Chromium is required in CI but ${chromiumPath} is missing`);
  fs.mkdirSync(artifacts, { recursive: true });
}

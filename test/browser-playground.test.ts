/**
 * `tensile playground` in Chromium (playwright-core): the page, served from 127.0.0.1 with the
 * isolation headers, loads nothing from beyond it; training starts on two threads and the curves grow
 * (batches arrive, a test accuracy after the first epoch); a digit drawn with the mouse is predicted,
 * and the DL0009 pooled images and the DL0011 shifted-head table appear. Screenshots go to
 * test-artifacts/ (git-ignored). Skips without /usr/bin/chromium unless CI is set, as the other
 * browser tests do.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { artifacts, chromiumPath, chromiumSkip, requireChromium } from './helpers/chromium.js';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startPlayground, type PlaygroundServer } from '../app/playground/index.js';

const skip = chromiumSkip;

/** What the page publishes on document.body.dataset for tests. */
type Dataset = Record<string, string | undefined>;
declare const document: {
  body: { dataset: Dataset };
  querySelectorAll(selector: string): { length: number };
};

describe('the playground in Chromium', { skip, timeout: 600_000 }, () => {
  let directory = '';
  let server: PlaygroundServer;
  let browser: Browser;
  let page: Page;
  const outsideRequests: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    requireChromium();
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-playground-'));
    execFileSync(process.execPath, [path.resolve('scripts', 'build-browser.mjs'), `--outdir=${directory}`], {
      stdio: 'pipe',
    });
    server = await startPlayground({ port: 0, bundleDirectory: directory });
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(server.url)) return route.continue();
      outsideRequests.push(url);
      return route.abort();
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (directory !== '') fs.rmSync(directory, { recursive: true, force: true });
  });

  const dataset = () => page.evaluate(() => ({ ...document.body.dataset }));

  test('the page is cross-origin isolated and trains on two threads with growing curves', async () => {
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.ready === 'true');
    assert.equal(await page.evaluate('crossOriginIsolated'), true);
    await page.selectOption('#threads', '2');
    await page.selectOption('#channels', '8,16');
    await page.click('#start');
    await page.waitForFunction(() => Number(document.body.dataset.batches ?? 0) >= 5, undefined, {
      timeout: 120_000,
    });
    const early = Number((await dataset()).batches);
    await page.waitForFunction((seen) => Number(document.body.dataset.batches ?? 0) >= seen + 20, early, {
      timeout: 120_000,
    });
    assert.ok(Number((await dataset()).batches) > early, 'the curves stopped growing');
    assert.match((await page.textContent('#status')) ?? '', /2 thread\(s\)/);
    assert.match((await page.textContent('#rates')) ?? '', /seed CNN[^:]*: \d+ samples\/s/);
    // A first epoch ends with a test accuracy well above chance.
    await page.waitForFunction(() => document.body.dataset.testAccuracy !== undefined, undefined, {
      timeout: 300_000,
    });
    const accuracy = Number((await dataset()).testAccuracy);
    assert.ok(accuracy > 0.5, `test accuracy ${accuracy} after one epoch (chance is 0.1)`);
    await page.screenshot({ path: path.join(artifacts, 'playground-training.png') });
  });

  test('a digit drawn with the mouse is predicted, with the pooling and head comparisons on it', async () => {
    const pad = (await page.locator('#pad').boundingBox())!;
    // A one: a straight vertical stroke.
    await page.mouse.move(pad.x + 140, pad.y + 40);
    await page.mouse.down();
    for (let y = 40; y <= 240; y += 10) await page.mouse.move(pad.x + 140, pad.y + y);
    await page.mouse.up();
    await page.waitForFunction(() => document.body.dataset.predicted !== undefined, undefined, {
      timeout: 60_000,
    });
    assert.equal((await dataset()).predicted, '1');
    assert.equal(await page.evaluate(() => document.querySelectorAll('#pooling canvas').length), 4);
    assert.match((await page.textContent('#pooling')) ?? '', /max pooling \(seed CNN\) says \d/);
    assert.match((await page.textContent('#heads')) ?? '', /GAP \+ FC \(\d+\).*Flatten \+ FC \(\d+\)/s);
    await page.screenshot({ path: path.join(artifacts, 'playground-prediction.png'), fullPage: true });
    await page.click('#stop');
    assert.deepEqual(outsideRequests, []);
    assert.deepEqual(pageErrors, []);
    assert.equal((await dataset()).error, undefined);
  });
});

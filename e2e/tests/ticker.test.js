// examples/ticker: a value every second, and a finite stream that says bye, ends, and stops
// the browser with a 204.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PHONE, TARGET_DIR, freePort, launchBrowser, openPage, screenshot, startProcess } from '../lib/harness.js';

let app;
let browser;

after(async () => {
  await browser?.close();
  await app?.stop();
});

test('ticker: ticks arrive every second, and the finite stream ends with bye and a 204', async () => {
  const port = await freePort();
  app = await startProcess(join(TARGET_DIR, 'ticker'), [], { env: { TICKER_LISTEN: `127.0.0.1:${port}` } });
  browser = await launchBrowser();
  // The 204 that stops EventSource is the point of the test; Chromium logs it.
  const page = await openPage(browser, { allow: [/status of 204/] });
  await page.goto(`${app.url}/`);
  await page.waitForSelector('#tick-status[data-state="live"]');
  await page.waitForFunction(() => document.getElementById('tick-count').textContent === '2 ticks', null, { timeout: 5000 });

  await page.click('#start-finite');
  await page.waitForSelector('#finite-status[data-state="closed"]', { timeout: 10000 });
  const log = await page.$$eval('#finite-log li', (items) => items.map((item) => item.textContent));
  assert.deepEqual(log, ['value 1', 'value 2', 'value 3', 'bye: that is all', 'the hub answered 204: EventSource is CLOSED']);
  await screenshot(page, 'ticker-laptop');
  await page.setViewportSize(PHONE);
  await screenshot(page, 'ticker-phone');
  assert.deepEqual(page.errors, []);
});

// examples/client-stream: start, send, end for one client id; after the end the hub answers
// 204 and the page's EventSource is CLOSED.

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

test('client-stream: the backend starts, sends to and ends one client\'s stream', async () => {
  const port = await freePort();
  app = await startProcess(join(TARGET_DIR, 'client-stream'), [], { env: { CLIENT_STREAM_LISTEN: `127.0.0.1:${port}` } });
  browser = await launchBrowser();
  const page = await openPage(browser, { allow: [/status of 204/] });
  await page.goto(`${app.url}/`);
  await page.waitForSelector('#status[data-state="live"]');
  assert.equal(await page.textContent('#ready-state'), 'OPEN');

  const count = () => page.$$eval('#log li', (items) => items.length);
  await page.click('#start');
  await page.waitForFunction(() => document.querySelectorAll('#log li').length === 1);
  for (const text of ['one', 'two', 'three']) {
    const before = await count();
    await page.fill('#text', text);
    await page.click('#send');
    await page.waitForFunction((n) => document.querySelectorAll('#log li').length === n + 1, before);
  }
  await page.click('#end');
  await page.waitForSelector('#status[data-state="closed"]', { timeout: 10000 });
  assert.equal(await page.textContent('#ready-state'), 'CLOSED');
  const log = await page.$$eval('#log li', (items) => items.map((item) => item.textContent));
  assert.deepEqual(log, [
    'started: stream open', 'one', 'two', 'three', 'ended: goodbye',
    'the hub answered 204: EventSource is CLOSED and will not reconnect',
  ]);
  // Still closed a moment later: the browser does not come back.
  await page.waitForTimeout(1500);
  assert.equal(await page.evaluate(() => document.querySelectorAll('#log li').length), 6);
  await screenshot(page, 'client-stream-laptop');
  await page.setViewportSize(PHONE);
  await screenshot(page, 'client-stream-phone');
  assert.deepEqual(page.errors, []);
});

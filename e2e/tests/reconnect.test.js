// Reconnection: the hub restarts on the same port with its redb history; an EventSource page
// resumes by Last-Event-ID and receives every message exactly once, in order.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { freePort, launchBrowser, openPage, publish, screenshot, startHerald, tempDir } from '../lib/harness.js';

const dataDir = tempDir('herald-e2e-redb-');
let browser;
let hub;

after(async () => {
  await browser?.close();
  await hub?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('an EventSource page loses nothing when the hub restarts', async () => {
  const port = await freePort();
  const args = ['--dev', '--data-dir', dataDir, '--retry', '500ms'];
  hub = await startHerald(args, { port });
  browser = await launchBrowser();
  // While the hub is down, Chromium logs the refused reconnection attempts.
  const page = await openPage(browser, { allow: [/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|net::ERR/] });
  await page.goto(`${hub.url}/`);
  const topic = 'https://example.com/restart';
  await page.evaluate((topic) => {
    window.received = [];
    window.opens = 0;
    const url = new URL('/.well-known/mercure', location.origin);
    url.searchParams.append('match', topic);
    const source = new EventSource(url);
    source.onopen = () => { window.opens += 1; };
    source.onmessage = (event) => window.received.push({ id: event.lastEventId, data: event.data });
  }, topic);
  await page.waitForFunction(() => window.opens === 1);

  for (const n of [1, 2, 3]) await publish(hub.url, hub.token, { topic, data: `m${n}`, id: `restart-${n}` });
  await page.waitForFunction(() => window.received.length === 3);

  await hub.stop();
  hub = await startHerald(args, { port });
  // Published before the browser is back: it must get these from history.
  for (const n of [4, 5]) await publish(hub.url, hub.token, { topic, data: `m${n}`, id: `restart-${n}` });
  await page.waitForFunction(() => window.opens >= 2, null, { timeout: 15000 });
  for (const n of [6]) await publish(hub.url, hub.token, { topic, data: `m${n}`, id: `restart-${n}` });
  await page.waitForFunction(() => window.received.length >= 6, null, { timeout: 10000 });
  await page.waitForTimeout(300); // a duplicate would arrive now

  const received = await page.evaluate(() => window.received);
  assert.deepEqual(received, [1, 2, 3, 4, 5, 6].map((n) => ({ id: `restart-${n}`, data: `m${n}` })));
  await screenshot(page, 'reconnect');
  assert.deepEqual(page.errors, []);
});

// The pages the hub serves: home, dashboard (fed by /herald/stats) and playground.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LAPTOP, PHONE, launchBrowser, openPage, publish, screenshot, startHerald } from '../lib/harness.js';

describe('pages served by the hub', () => {
  let hub;
  let browser;

  before(async () => {
    hub = await startHerald(['--memory', '--dev']);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  test('the home page shows this hub and links to the other pages', async () => {
    for (const [name, viewport] of [['laptop', LAPTOP], ['phone', PHONE]]) {
      const page = await openPage(browser, { viewport });
      await page.goto(`${hub.url}/`);
      await page.waitForFunction(() => document.getElementById('hub-store').textContent !== '…');
      assert.equal(await page.textContent('#hub-url'), `${hub.url}/.well-known/mercure`);
      assert.match(await page.textContent('#curl-subscribe'), new RegExp(hub.url.replaceAll('.', '\\.')));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth > innerWidth);
      assert.equal(overflow, false, `the home page scrolls sideways on a ${name}`);
      await screenshot(page, `home-${name}`);
      assert.deepEqual(page.errors, []);
      await page.close();
    }
  });

  test('the dashboard counts subscribers as they connect and leave', async () => {
    const page = await openPage(browser);
    await page.goto(`${hub.url}/dashboard`);
    await page.waitForSelector('#status[data-state="live"]');
    await page.waitForFunction(() => document.getElementById('connections').textContent === '0');

    // Three subscribers from outside the browser, like any SSE client.
    const streams = [];
    for (let i = 0; i < 3; i++) {
      const controller = new AbortController();
      const response = await fetch(`${hub.url}/.well-known/mercure?match=https://example.com/tick/${i % 2}`, { signal: controller.signal });
      assert.equal(response.status, 200);
      streams.push({ controller, response });
    }
    await page.waitForFunction(() => document.getElementById('connections').textContent === '3', null, { timeout: 5000 });
    assert.equal(await page.textContent('#topics'), '2');

    for (let i = 0; i < 5; i++) await publish(hub.url, hub.token, { topic: 'https://example.com/tick/0', data: `tick ${i}` });
    await page.waitForFunction(() => document.getElementById('published').textContent.startsWith('5 '), null, { timeout: 5000 });
    await page.waitForFunction(() => document.querySelectorAll('#chart polyline').length === 2, null, { timeout: 5000 });
    await screenshot(page, 'dashboard-laptop');
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(1200);
    await screenshot(page, 'dashboard-phone');

    for (const { controller } of streams) controller.abort();
    await page.waitForFunction(() => document.getElementById('connections').textContent === '0', null, { timeout: 5000 });
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('the playground subscribes, publishes through its form, and shows the event and its raw frame', async () => {
    for (const [name, viewport] of [['laptop', LAPTOP], ['phone', PHONE]]) {
      const page = await openPage(browser, { viewport });
      await page.goto(`${hub.url}/playground`);
      await page.waitForSelector('body[data-ready="true"]');
      const topic = `https://example.com/books/${name}`;
      await page.fill('#selectors .selector-row:first-child input', topic);
      await page.click('#subscribe');
      await page.waitForSelector('#sub-status[data-state="live"]');
      // The raw view shows the response head and the opening retry frame.
      await page.waitForFunction(() => document.querySelectorAll('#raw .raw-frame').length >= 2);

      await page.fill('#pub-topics', topic);
      await page.fill('#pub-data', 'first line\nsecond line');
      await page.fill('#pub-id', `book-${name}-1`);
      await page.fill('#pub-type', 'greeting');
      await page.fill('#pub-retry', '3000');
      await page.fill('#pub-token', hub.token);
      await page.click('#publish');
      await page.waitForFunction(() => document.getElementById('pub-result').dataset.ok === 'true');
      assert.equal(await page.textContent('#pub-result'), `200 · book-${name}-1`);

      const event = page.locator('#events li.event[data-type="greeting"]');
      await event.waitFor();
      assert.equal(await event.locator('.data').textContent(), 'first line\nsecond line');
      assert.match(await event.locator('.meta').textContent(), new RegExp(`id book-${name}-1`));
      await screenshot(page, `playground-events-${name}`);

      await page.click('#tab-raw');
      const frame = page.locator('#raw li.raw-frame', { hasText: `book-${name}-1` }).locator('pre');
      await frame.waitFor();
      const expected = `id: book-${name}-1\\n\nevent: greeting\\n\nretry: 3000\\n\ndata: first line\\n\ndata: second line\\n\n\\n\n`;
      assert.equal(await frame.textContent(), expected);
      await screenshot(page, `playground-raw-${name}`);

      // A refused publish says why.
      await page.fill('#pub-token', 'not-a-token');
      await page.click('#publish');
      await page.waitForFunction(() => document.getElementById('pub-result').dataset.ok === 'false');
      assert.match(await page.textContent('#pub-result'), /^401 · /);
      // The 401 is the test's doing; Chromium logs failed loads as console errors.
      page.errors = page.errors.filter((text) => !/status of 401/.test(text));
      assert.deepEqual(page.errors, []);
      await page.close();
    }
  });

  test('the playground shows a stream ended by the hub and the 204 that follows', async () => {
    const page = await openPage(browser, { allow: [/status of 204/] });
    await page.goto(`${hub.url}/playground`);
    await page.waitForSelector('body[data-ready="true"]');
    const topic = 'https://example.com/clients/ending';
    await page.fill('#selectors .selector-row:first-child input', topic);
    await page.click('#selectors .selector-row:nth-child(2) button');
    await page.click('#subscribe');
    await page.waitForSelector('#sub-status[data-state="live"]');
    await page.fill('#pub-topics', topic);
    await page.fill('#pub-token', hub.token);
    await page.click('#end');
    await page.waitForFunction(() => document.getElementById('pub-result').dataset.ok === 'true');
    await page.waitForSelector('#sub-status[data-state="closed"]', { timeout: 10000 });
    await page.waitForSelector('#events li[data-type="closed"]', { timeout: 10000 });
    await screenshot(page, 'playground-ended');
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});

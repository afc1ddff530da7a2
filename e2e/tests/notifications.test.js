// examples/notifications: private per-user topics, the token in an HttpOnly cookie, and a
// cross-origin EventSource with credentials.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PHONE, TARGET_DIR, freePort, launchBrowser, openPage, screenshot, startProcess } from '../lib/harness.js';

let app;
const browsers = [];

after(async () => {
  for (const browser of browsers) await browser.close();
  await app?.stop();
});

async function signIn(user, viewport) {
  // One browser per user: cookies are per host, so two users need two cookie jars.
  const browser = await launchBrowser();
  browsers.push(browser);
  const page = await openPage(browser, viewport ? { viewport } : {});
  await page.goto(`${app.url}/?user=${user}`);
  await page.waitForSelector('#status[data-state="live"]');
  return page;
}

test('notifications: a live badge from private updates, across origins, token in an HttpOnly cookie', async () => {
  const [appPort, hubPort] = [await freePort(), await freePort()];
  app = await startProcess(join(TARGET_DIR, 'notifications'), [], {
    env: { NOTIFICATIONS_APP_LISTEN: `127.0.0.1:${appPort}`, NOTIFICATIONS_HUB_LISTEN: `127.0.0.1:${hubPort}` },
  });
  const hubUrl = `http://127.0.0.1:${hubPort}`;
  assert.notEqual(new URL(hubUrl).origin, new URL(app.url).origin);

  const alice = await signIn('alice');
  const bob = await signIn('bob', PHONE);
  assert.equal(await alice.evaluate(() => document.cookie.includes('herald_token')), false, 'the token cookie is readable by scripts');

  for (const expected of ['1', '2']) {
    await alice.click('#notify');
    await alice.waitForFunction((n) => document.getElementById('badge').textContent === n, expected);
  }
  await bob.click('#notify');
  await bob.waitForFunction(() => document.getElementById('badge').textContent === '1');
  await alice.waitForTimeout(500);
  assert.equal(await alice.textContent('#badge'), '2', "bob's notification reached alice");

  // Without the cookie the hub refuses the subscription outright.
  const anonymous = await fetch(`${hubUrl}/.well-known/mercure?match=https://example.com/users/alice/notifications`);
  assert.equal(anonymous.status, 401);

  await screenshot(alice, 'notifications-laptop');
  await screenshot(bob, 'notifications-phone');
  await alice.click('#read');
  assert.equal(await alice.textContent('#badge'), '0');
  for (const page of [alice, bob]) assert.deepEqual(page.errors, []);
});

// examples/chat: messages posted over HTTP reach every tab in the room (and no other room);
// a tab opened later receives the room's history.

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

async function openChat(url, name, room, viewport) {
  const page = await openPage(browser, viewport ? { viewport } : {});
  await page.goto(`${url}/?name=${name}&room=${room}`);
  await page.waitForSelector('#status[data-state="live"]');
  return page;
}

const texts = (page) => page.$$eval('#messages li .data', (items) => items.map((item) => item.textContent));

test('chat: several tabs, rooms, and history for a tab that opens later', async () => {
  const port = await freePort();
  app = await startProcess(join(TARGET_DIR, 'chat'), [], { env: { CHAT_LISTEN: `127.0.0.1:${port}` } });
  browser = await launchBrowser();
  const alice = await openChat(app.url, 'alice', 'general');
  const bob = await openChat(app.url, 'bob', 'general');
  const carol = await openChat(app.url, 'carol', 'rust');

  await alice.fill('#text', 'hi bob');
  await alice.click('#send');
  await bob.fill('#text', 'hi alice <b>not bold</b>');
  await bob.press('#text', 'Enter');
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 2);
    assert.deepEqual(await texts(page), ['hi bob', 'hi alice <b>not bold</b>']);
  }
  await carol.fill('#text', 'anyone into lifetimes?');
  await carol.click('#send');
  await carol.waitForFunction(() => document.querySelectorAll('#messages li').length === 1);
  assert.equal((await texts(alice)).length, 2, 'a message of another room reached general');

  // A tab opened later gets the history of its room, in order.
  const dave = await openChat(app.url, 'dave', 'general', PHONE);
  await dave.waitForFunction(() => document.querySelectorAll('#messages li').length === 2);
  assert.deepEqual(await texts(dave), ['hi bob', 'hi alice <b>not bold</b>']);
  // Switching rooms shows that room's history.
  await dave.selectOption('#room', 'rust');
  await dave.waitForFunction(() => document.querySelectorAll('#messages li').length === 1);
  assert.deepEqual(await texts(dave), ['anyone into lifetimes?']);

  await screenshot(alice, 'chat-laptop');
  await screenshot(dave, 'chat-phone');
  for (const page of [alice, bob, carol, dave]) assert.deepEqual(page.errors, []);
});

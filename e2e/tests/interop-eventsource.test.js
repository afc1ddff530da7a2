// Interoperability with Chromium's own EventSource (issue #5, the browser part): named events,
// multi-line data, ids and lastEventId, resume by Last-Event-ID after the hub drops the
// connection, and no more reconnection once the hub answers 204.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { launchBrowser, openPage, publish, screenshot, startHerald } from '../lib/harness.js';

const hubs = [];
let browser;

after(async () => {
  await browser?.close();
  for (const hub of hubs) await hub.stop();
});

async function hubAndPage(args) {
  const hub = await startHerald(['--memory', '--dev', ...args]);
  hubs.push(hub);
  browser ??= await launchBrowser();
  // The bare /healthz document has no icon, so Chromium asks for /favicon.ico (404); the
  // 204 that ends a stream is logged by Chromium as an error too.
  const page = await openPage(browser, { allow: [/favicon\.ico/, /status of 204/] });
  await page.goto(`${hub.url}/healthz`);
  return { hub, page };
}

/**
 * In the page: one EventSource on `topic`, every event it dispatches recorded in
 * `window.log` as `{ listener, type, data, id }`, with `window.opens`, `window.errors` and a
 * visible table for the screenshot. `types` are the named events it listens for.
 */
function subscribe({ topic, types }) {
  document.body.innerHTML = `
    <style>
      body { font: 14px system-ui, sans-serif; margin: 24px; color: #1c1f2b; }
      h1 { font-size: 20px; margin: 0 0 12px; }
      table { border-collapse: collapse; }
      td, th { border-bottom: 1px solid #e2e5ee; padding: 5px 14px 5px 0; text-align: left; vertical-align: top; }
      td.data { white-space: pre; font-family: ui-monospace, monospace; }
    </style>
    <h1>Chromium EventSource <span id="state"></span></h1>
    <table><thead><tr><th>listener</th><th>type</th><th>lastEventId</th><th>data</th></tr></thead><tbody></tbody></table>`;
  const STATES = ['CONNECTING', 'OPEN', 'CLOSED'];
  const url = new URL('/.well-known/mercure', location.origin);
  url.searchParams.append('match', topic);
  const source = new EventSource(url);
  window.source = source;
  window.log = [];
  window.opens = 0;
  window.errors = 0;
  const state = () => { document.getElementById('state').textContent = `(${STATES[source.readyState]}, opened ${window.opens}×)`; };
  const record = (listener) => (event) => {
    window.log.push({ listener, type: event.type, data: event.data, id: event.lastEventId });
    const row = document.createElement('tr');
    for (const [value, cls] of [[listener, ''], [event.type, ''], [event.lastEventId, ''], [event.data, 'data']]) {
      const cell = document.createElement('td');
      cell.textContent = value;
      cell.className = cls;
      row.append(cell);
    }
    document.querySelector('tbody').append(row);
  };
  source.onmessage = record('onmessage');
  for (const type of types) source.addEventListener(type, record(type));
  source.onopen = () => { window.opens += 1; state(); };
  source.onerror = () => { window.errors += 1; state(); };
  state();
}

const logLength = (n) => window.log.length === n;

test('Chromium EventSource: named events, multi-line data, ids and lastEventId', async () => {
  const { hub, page } = await hubAndPage([]);
  const topic = 'https://example.com/interop/fields';
  await page.evaluate(subscribe, { topic, types: ['greeting'] });
  await page.waitForFunction(() => window.opens === 1);

  await publish(hub.url, hub.token, { topic, data: 'plain', id: 'interop-1' });
  await publish(hub.url, hub.token, { topic, data: 'hello', type: 'greeting', id: 'interop-2' });
  // Each kind of line break in data becomes its own data: line on the wire, and the browser
  // joins the lines with LF.
  await publish(hub.url, hub.token, { topic, data: 'line 1\nline 2\r\nline 3\rline 4', id: 'interop-3' });
  // One leading space survives (the parser strips only the one after the colon), and so do
  // characters outside ASCII.
  await publish(hub.url, hub.token, { topic, data: ' indented, été ☀ 🚀', id: 'interop-4' });
  // A named event nobody listens for is dispatched to no one: not to onmessage either.
  await publish(hub.url, hub.token, { topic, data: 'ignored', type: 'nobody-listens', id: 'interop-5' });
  // Without an id the hub makes one, and that is what lastEventId becomes.
  const generated = await publish(hub.url, hub.token, { topic, data: 'no id given' });
  assert.match(generated, /^urn:uuid:/);
  await page.waitForFunction(logLength, 5);
  await page.waitForTimeout(300); // a stray dispatch of the ignored event would show now

  assert.deepEqual(await page.evaluate(() => window.log), [
    { listener: 'onmessage', type: 'message', data: 'plain', id: 'interop-1' },
    { listener: 'greeting', type: 'greeting', data: 'hello', id: 'interop-2' },
    { listener: 'onmessage', type: 'message', data: 'line 1\nline 2\nline 3\nline 4', id: 'interop-3' },
    { listener: 'onmessage', type: 'message', data: ' indented, été ☀ 🚀', id: 'interop-4' },
    { listener: 'onmessage', type: 'message', data: 'no id given', id: generated },
  ]);
  assert.equal(await page.evaluate(() => window.errors), 0);
  await screenshot(page, 'interop-eventsource-fields');
  assert.deepEqual(page.errors, []);
});

test('Chromium EventSource: resumes by Last-Event-ID after the hub drops the stream, nothing lost or duplicated', async () => {
  // The hub closes every stream after 2 s and tells the browser to come back after 2 s.
  const { hub, page } = await hubAndPage(['--max-connection-age', '2s', '--retry', '2s']);
  const topic = 'https://example.com/interop/resume';
  const requests = [];
  page.on('request', (request) => {
    // allHeaders(): the headers Chromium actually sent, Last-Event-ID included.
    if (request.url().includes('/.well-known/mercure?')) requests.push(request.allHeaders().then((headers) => headers['last-event-id'] ?? null));
  });
  await page.evaluate(subscribe, { topic, types: [] });
  await page.waitForFunction(() => window.opens === 1);

  const send = async (from, to) => {
    for (let n = from; n <= to; n += 1) await publish(hub.url, hub.token, { topic, data: `m${n}`, id: `resume-${n}` });
  };
  await send(1, 3);
  await page.waitForFunction(logLength, 3);
  // The hub drops the stream; while the browser waits to reconnect, three more are published.
  await page.waitForFunction(() => window.errors === 1, null, { timeout: 10000 });
  await send(4, 6);
  await page.waitForFunction(() => window.opens === 2, null, { timeout: 10000 });
  await page.waitForFunction(logLength, 6);
  await send(7, 8);
  await page.waitForFunction(logLength, 8);
  // Dropped again with nothing missed: the resume must not replay anything.
  await page.waitForFunction(() => window.opens === 3, null, { timeout: 10000 });
  await send(9, 9);
  await page.waitForFunction(logLength, 9);

  const log = await page.evaluate(() => window.log.map((event) => `${event.id}=${event.data}`));
  assert.deepEqual(log, [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `resume-${n}=m${n}`));
  // The first request has no Last-Event-ID; each reconnection carries the last id received.
  assert.deepEqual(await Promise.all(requests), [null, 'resume-3', 'resume-8']);
  await screenshot(page, 'interop-eventsource-resume');
  assert.deepEqual(page.errors, []);
});

test('Chromium EventSource: a 204 after the end stops reconnection for good', async () => {
  const { hub, page } = await hubAndPage(['--retry', '500ms']);
  const topic = 'https://example.com/interop/end';
  const responses = [];
  page.on('response', (response) => {
    if (response.url().includes('/.well-known/mercure?')) responses.push(response.status());
  });
  await page.evaluate(subscribe, { topic, types: ['bye'] });
  await page.waitForFunction(() => window.opens === 1);
  await publish(hub.url, hub.token, { topic, data: 'before the end', id: 'end-1' });
  await page.waitForFunction(logLength, 1);

  const ended = await fetch(`${hub.url}/.well-known/mercure/end`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${hub.token}` },
    body: new URLSearchParams({ topic, type: 'bye', data: 'that is all', id: 'end-2' }),
  });
  assert.equal(ended.status, 200, await ended.text());
  await page.waitForFunction(() => window.source.readyState === EventSource.CLOSED, null, { timeout: 10000 });
  assert.deepEqual(responses, [200, 204]);
  // Four retry intervals later there has been no other attempt.
  await page.waitForTimeout(2000);
  assert.deepEqual(responses, [200, 204]);
  assert.equal(await page.evaluate(() => window.opens), 1);
  assert.deepEqual(await page.evaluate(() => window.log.map((event) => [event.listener, event.data])), [
    ['onmessage', 'before the end'],
    ['bye', 'that is all'],
  ]);
  // A new EventSource on the ended topic is closed at once, without ever opening.
  const fresh = await page.evaluate((topic) => new Promise((resolve) => {
    const url = new URL('/.well-known/mercure', location.origin);
    url.searchParams.append('match', topic);
    const source = new EventSource(url);
    let opened = false;
    source.onopen = () => { opened = true; };
    source.onerror = () => resolve({ state: source.readyState, opened });
  }), topic);
  assert.deepEqual(fresh, { state: 2, opened: false });
  await screenshot(page, 'interop-eventsource-end');
  assert.deepEqual(page.errors, []);
});

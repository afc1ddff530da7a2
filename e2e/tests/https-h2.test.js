// HTTPS and HTTP/2 (issue #9): one page opens 12 EventSources to the hub. Over TLS, Chromium
// negotiates h2 by ALPN and all 12 share one connection: every stream opens and receives.
// Over plain HTTP/1.1 the browser holds at most 6 connections per host, so only 6 streams
// open and the others wait until one of the first ones closes.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { launchBrowser, openPage, publish, screenshot, startHerald, tempDir } from '../lib/harness.js';

const STREAMS = 12;
const TOPIC = 'https://example.com/h2-fan-in';
const certDir = tempDir('herald-e2e-tls-');
const hubs = [];
const browsers = [];

after(async () => {
  for (const browser of browsers) await browser.close();
  for (const hub of hubs) await hub.stop();
  rmSync(certDir, { recursive: true, force: true });
});

/** A throwaway self-signed certificate for 127.0.0.1 (P-256), made with openssl. */
function makeCertificate() {
  const cert = join(certDir, 'cert.pem');
  const key = join(certDir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  const pem = readFileSync(cert, 'utf8');
  // Chromium trusts exactly this key (and nothing else it would otherwise refuse) when given
  // the base64 SHA-256 of its SubjectPublicKeyInfo.
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return { cert, key, pem, spki: createHash('sha256').update(spki).digest('base64') };
}

/** Publishes over HTTPS from Node, trusting only the test certificate. */
function publishTls(hubUrl, token, ca, fields) {
  const body = new URLSearchParams(fields).toString();
  return new Promise((resolvePublish, reject) => {
    const req = request(`${hubUrl}/.well-known/mercure`, {
      method: 'POST',
      ca,
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/x-www-form-urlencoded',
        'Content-Length': Buffer.byteLength(body),
      },
    }, (response) => {
      let text = '';
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => (response.statusCode === 200 ? resolvePublish(text.trim()) : reject(new Error(`publish answered ${response.statusCode}: ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * In the page: opens `count` EventSources on `topic` and shows each one's state and the last
 * data it received in a table; `window.streams` holds the same for the test.
 */
function openStreams({ count, topic }) {
  document.body.innerHTML = `
    <style>
      body { font: 15px system-ui, sans-serif; margin: 24px; color: #1c1f2b; }
      h1 { font-size: 20px; margin: 0 0 4px; } p { color: #5d6478; margin: 0 0 16px; }
      table { border-collapse: collapse; min-width: 360px; }
      td, th { border-bottom: 1px solid #e2e5ee; padding: 6px 14px 6px 0; text-align: left; }
      td:nth-child(2)[data-state="OPEN"] { color: #0f9d58; font-weight: 600; }
      td:nth-child(2)[data-state="CONNECTING"] { color: #c77700; font-weight: 600; }
    </style>
    <h1>${count} EventSources on one page</h1>
    <p>${location.protocol}//${location.host}</p>
    <table><thead><tr><th>#</th><th>readyState</th><th>received</th></tr></thead><tbody></tbody></table>`;
  const STATES = ['CONNECTING', 'OPEN', 'CLOSED'];
  window.streams = [];
  for (let i = 0; i < count; i += 1) {
    const row = document.createElement('tr');
    row.innerHTML = `<td>${i + 1}</td><td></td><td></td>`;
    document.querySelector('tbody').append(row);
    const url = new URL('/.well-known/mercure', location.origin);
    url.searchParams.append('match', topic);
    url.searchParams.append('stream', String(i + 1)); // one distinct URL per stream
    const source = new EventSource(url);
    const stream = { source, opened: false, received: [] };
    const show = () => {
      row.children[1].textContent = STATES[source.readyState];
      row.children[1].dataset.state = STATES[source.readyState];
      row.children[2].textContent = stream.received.join(', ');
    };
    source.onopen = () => { stream.opened = true; show(); };
    source.onmessage = (event) => { stream.received.push(event.data); show(); };
    source.onerror = show;
    stream.show = show;
    show();
    window.streams.push(stream);
  }
}

/**
 * Records the protocol of every hub stream response the page gets, and the connections they
 * came on, through CDP.
 */
async function recordProtocols(browser, page) {
  const seen = { protocols: [], connections: new Set() };
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.responseReceived', ({ response }) => {
    if (!response.url.includes('/.well-known/mercure?')) return;
    seen.protocols.push(response.protocol);
    seen.connections.add(response.connectionId);
  });
  return seen;
}

test('over HTTPS the browser speaks HTTP/2 and holds 12 EventSources on one page', async () => {
  const tls = makeCertificate();
  const hub = await startHerald(['--memory', '--dev', '--tls-cert', tls.cert, '--tls-key', tls.key]);
  hubs.push(hub);
  assert.match(hub.url, /^https:\/\//);
  const browser = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${tls.spki}`] });
  browsers.push(browser);
  // The bare /healthz document has no icon, so Chromium asks for /favicon.ico (404).
  const page = await openPage(browser, { allow: [/favicon\.ico/] });
  const streams = await recordProtocols(browser, page);
  await page.goto(`${hub.url}/healthz`);
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');

  await page.evaluate(openStreams, { count: STREAMS, topic: TOPIC });
  await page.waitForFunction((n) => window.streams.filter((s) => s.opened).length === n, STREAMS);
  await publishTls(hub.url, hub.token, tls.pem, { topic: TOPIC, data: 'over h2' });
  await page.waitForFunction((n) => window.streams.filter((s) => s.received.includes('over h2')).length === n, STREAMS);
  assert.deepEqual(streams.protocols, Array(STREAMS).fill('h2'));
  assert.equal(streams.connections.size, 1, 'the streams share one connection');
  await screenshot(page, 'https-h2-12-streams');
  assert.deepEqual(page.errors, []);
});

test('over plain HTTP/1.1 the same page gets only ~6 streams until one closes', async () => {
  const hub = await startHerald(['--memory', '--dev']);
  hubs.push(hub);
  const browser = await launchBrowser();
  browsers.push(browser);
  // The bare /healthz document has no icon, so Chromium asks for /favicon.ico (404).
  const page = await openPage(browser, { allow: [/favicon\.ico/] });
  const streams = await recordProtocols(browser, page);
  await page.goto(`${hub.url}/healthz`);
  await page.evaluate(openStreams, { count: STREAMS, topic: TOPIC });

  // Chromium opens 6 connections per host and no more: wait until it has, and until those
  // streams provably work (they receive an update). The rest cannot open while these six
  // hold their connections, whatever the timing.
  await page.waitForFunction(() => window.streams.filter((s) => s.opened).length >= 6);
  await publish(hub.url, hub.token, { topic: TOPIC, data: 'first' });
  const held = await page.evaluate(() => window.streams.filter((s) => s.opened).length);
  await page.waitForFunction((n) => window.streams.filter((s) => s.received.includes('first')).length === n, held);
  const state = await page.evaluate(() => ({
    opened: window.streams.filter((s) => s.opened).length,
    received: window.streams.filter((s) => s.received.includes('first')).length,
    connecting: window.streams.filter((s) => s.source.readyState === EventSource.CONNECTING).length,
  }));
  assert.ok(state.opened < STREAMS, `all ${STREAMS} streams opened over HTTP/1.1: ${JSON.stringify(state)}`);
  assert.equal(state.received, state.opened);
  assert.equal(state.opened + state.connecting, STREAMS, 'the others wait, they do not fail');
  assert.ok(streams.protocols.every((protocol) => protocol === 'http/1.1'), streams.protocols.join());
  assert.equal(streams.connections.size, state.opened, 'one connection per open stream');
  await screenshot(page, 'https-h2-http1-6-streams');

  // Closing the open ones frees their connections, and the waiting streams open.
  await page.evaluate(() => { for (const stream of window.streams) if (stream.opened) { stream.source.close(); stream.show(); } });
  await page.waitForFunction((n) => window.streams.filter((s) => s.source.readyState === EventSource.OPEN).length === n, STREAMS - state.opened);
  await publish(hub.url, hub.token, { topic: TOPIC, data: 'second' });
  await page.waitForFunction((n) => window.streams.filter((s) => s.received.includes('second')).length === n, STREAMS - state.opened);
  assert.deepEqual(page.errors, []);
});

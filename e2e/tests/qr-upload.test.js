// examples/qr-upload: a desktop page shows a QR code for a session; a phone (a second browser
// with a phone viewport and no cookies) opens the session's URL and uploads photos, and each
// appears on the desktop page at once. With a short session TTL, the session expires: the
// desktop's EventSource gets 204 and is CLOSED, and uploads are refused.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { deflateSync, crc32 } from 'node:zlib';
import { PHONE, TARGET_DIR, freePort, launchBrowser, openPage, screenshot, startProcess } from '../lib/harness.js';

const apps = [];
const browsers = [];

after(async () => {
  for (const browser of browsers) await browser.close();
  for (const app of apps) await app.stop();
});

/** A real RGB PNG of `width` × `height` with a diagonal gradient from `from` to `to`. */
function png(width, height, from, to) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // RGB
  const rows = [];
  for (let y = 0; y < height; y += 1) {
    const row = Buffer.alloc(1 + width * 3); // filter byte 0, then pixels
    for (let x = 0; x < width; x += 1) {
      const t = (x + y) / (width + height - 2);
      for (let c = 0; c < 3; c += 1) row[1 + x * 3 + c] = Math.round(from[c] + (to[c] - from[c]) * t);
    }
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function startApp(env) {
  const port = await freePort();
  const app = await startProcess(join(TARGET_DIR, 'qr-upload'), [], {
    env: { QR_UPLOAD_LISTEN: `127.0.0.1:${port}`, ...env },
  });
  apps.push(app);
  return app;
}

async function browser() {
  const launched = await launchBrowser();
  browsers.push(launched);
  return launched;
}

/** Opens the desktop page and waits until its stream is open; returns it and the phone URL. */
async function openDesktop(app, allow = []) {
  const desktop = await openPage(await browser(), { allow });
  await desktop.goto(`${app.url}/`);
  await desktop.waitForSelector('#status[data-state="live"]');
  const phoneUrl = await desktop.getAttribute('#session', 'data-phone-url');
  assert.match(phoneUrl, /^http:\/\/127\.0\.0\.1:\d+\/upload\/[0-9a-f]{32}$/);
  assert.equal(await desktop.getAttribute('#phone-link', 'href'), phoneUrl);
  return { desktop, phoneUrl };
}

async function openPhone(phoneUrl, allow = []) {
  // Its own browser: the phone has none of the desktop's cookies.
  const phone = await openPage(await browser(), { viewport: PHONE, allow });
  await phone.goto(phoneUrl);
  await phone.waitForSelector('body[data-ready="true"]');
  return phone;
}

test('qr-upload: photos sent from the phone appear on the desktop page the moment they arrive', async () => {
  const app = await startApp({ QR_UPLOAD_MAX_PHOTO_BYTES: '65536', QR_UPLOAD_MAX_PHOTOS: '3' });
  const { desktop, phoneUrl } = await openDesktop(app);
  // The QR code is an SVG the app drew, and it loaded.
  const qr = await desktop.$eval('#qr', (image) => ({ width: image.naturalWidth, src: image.src }));
  assert.ok(qr.width >= 200, `QR code not rendered: ${JSON.stringify(qr)}`);
  const qrResponse = await desktop.request.get(qr.src);
  assert.equal(qrResponse.headers()['content-type'], 'image/svg+xml');
  assert.match(await qrResponse.text(), /<svg/);

  const phone = await openPhone(phoneUrl, [/status of 415/]);
  assert.match(await phone.textContent('#limits'), /Up to 3 photos, 64 KB each/);
  assert.equal(await phone.getAttribute('#camera', 'capture'), 'environment');
  assert.equal(await phone.getAttribute('#camera', 'accept'), 'image/*');
  assert.equal(await phone.$eval('#camera', (input) => input.multiple && !input.disabled), true);

  // One photo "taken" with the camera input.
  await phone.setInputFiles('#camera', { name: 'sunset.png', mimeType: 'image/png', buffer: png(160, 120, [255, 94, 58], [88, 42, 160]) });
  await desktop.waitForFunction(() => document.querySelector('#photos li[data-number="1"] img')?.naturalWidth === 160);
  await phone.waitForSelector('#uploads li[data-state="sent"]');

  // Two from the library, one of which is not an image at all.
  await phone.setInputFiles('#library', [
    { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') },
    { name: 'forest.png', mimeType: 'image/png', buffer: png(120, 160, [20, 120, 70], [200, 230, 120]) },
  ]);
  await desktop.waitForFunction(() => document.querySelector('#photos li[data-number="2"] img')?.naturalWidth === 120);
  await phone.waitForFunction(() => document.querySelectorAll('#uploads li[data-state]:not([data-state="sending"])').length === 3);
  const phoneStates = await phone.$$eval('#uploads li', (items) => items.map((item) => [item.querySelector('.name').textContent, item.dataset.state, item.querySelector('.state').textContent]));
  assert.deepEqual(phoneStates.map(([name, state]) => [name, state]), [['forest.png', 'sent'], ['notes.png', 'refused'], ['sunset.png', 'sent']]);
  assert.match(phoneStates[1][2], /not a photo the app can show/);

  // The desktop shows exactly the two photos, newest first, with their names.
  const shown = await desktop.$$eval('#photos li', (items) => items.map((item) => item.querySelector('.name').textContent));
  assert.deepEqual(shown, ['forest.png', 'sunset.png']);
  assert.equal(await desktop.textContent('#count'), '2 of 3');
  const photoUrl = await desktop.$eval('#photos li[data-number="1"] img', (image) => image.src);
  const photo = await fetch(photoUrl);
  assert.equal(photo.headers.get('content-type'), 'image/png');
  assert.equal(photo.headers.get('x-content-type-options'), 'nosniff');

  // Too large: the phone says so without sending; the app refuses it on its own as well.
  const big = Buffer.concat([png(4, 4, [0, 0, 0], [1, 1, 1]), Buffer.alloc(70000)]);
  await phone.setInputFiles('#library', { name: 'huge.png', mimeType: 'image/png', buffer: big });
  await phone.waitForFunction(() => /Too large .*the limit is 64 KB/.test(document.querySelector('#uploads li .state')?.textContent ?? ''));
  const session = new URL(phoneUrl).pathname.split('/')[2];
  const refused = await fetch(`${app.url}/upload/${session}/photos?name=huge.png`, { method: 'POST', body: big });
  assert.equal(refused.status, 413);
  assert.match(await refused.text(), /too large: the limit is 64 KB per photo/);

  // Nobody without the desktop's cookie can read the session's topic.
  const topic = `${app.url}/members/x/uploads/${session}`;
  const anonymous = await fetch(`${app.url}/.well-known/mercure?match=${encodeURIComponent(topic)}`);
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();

  await screenshot(desktop, 'qr-upload-desktop-laptop');
  await screenshot(phone, 'qr-upload-phone');
  await desktop.setViewportSize(PHONE);
  await screenshot(desktop, 'qr-upload-desktop-phone-width');
  for (const page of [desktop, phone]) assert.deepEqual(page.errors, []);
});

test('qr-upload: the session expires, the desktop stream ends with 204, uploads are refused', async () => {
  const app = await startApp({ QR_UPLOAD_SESSION_TTL: '4s' });
  const { desktop, phoneUrl } = await openDesktop(app, [/status of 204/]);
  const streams = [];
  desktop.on('response', (response) => {
    if (response.url().includes('/.well-known/mercure')) streams.push(response.status());
  });

  await desktop.waitForSelector('#session[data-state="expired"]', { timeout: 15000 });
  await desktop.waitForFunction(() => document.getElementById('ready-state').textContent === 'CLOSED', null, { timeout: 15000 });
  assert.equal(await desktop.getAttribute('#status', 'data-state'), 'closed');
  assert.equal(await desktop.textContent('#countdown'), 'expired');
  assert.equal(await desktop.isVisible('#restart'), true);
  assert.equal(await desktop.isVisible('#qr'), false, 'a dead QR code is still shown');
  // The reconnection after the end was answered 204, and the browser does not come back.
  assert.deepEqual(streams, [204]);
  await desktop.waitForTimeout(2500); // more than the hub's retry: a reconnection would show now
  assert.deepEqual(streams, [204]);

  // The phone hears why, and so does any other client.
  const phone = await openPhone(phoneUrl, [/status of 410/]);
  assert.match(await phone.textContent('#problem'), /This upload session has expired/);
  assert.equal(await phone.$eval('#camera', (input) => input.disabled), true);
  const session = new URL(phoneUrl).pathname.split('/')[2];
  const late = await fetch(`${app.url}/upload/${session}/photos?name=late.png`, { method: 'POST', body: png(4, 4, [0, 0, 0], [9, 9, 9]) });
  assert.equal(late.status, 410);
  assert.match(await late.text(), /expired/);

  await screenshot(desktop, 'qr-upload-expired-laptop');
  await screenshot(phone, 'qr-upload-expired-phone');

  // A new session starts from the button.
  await desktop.click('#restart');
  await desktop.waitForSelector('#status[data-state="live"]');
  assert.notEqual(await desktop.getAttribute('#session', 'data-phone-url'), phoneUrl);
  for (const page of [desktop, phone]) assert.deepEqual(page.errors, []);
});

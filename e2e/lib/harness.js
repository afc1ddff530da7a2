// Shared helpers for the browser tests: start the real `herald` binary (or an example) on a
// free port, launch Debian's Chromium through playwright-core, collect console errors, and
// save screenshots to e2e/artifacts/.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = resolve(here, '..');
export const ARTIFACTS = join(E2E_DIR, 'artifacts');
export const TARGET_DIR = resolve(E2E_DIR, process.env.CARGO_TARGET_DIR ?? '../target', 'debug');
export const HERALD_BIN = resolve(E2E_DIR, process.env.HERALD_BIN ?? '../target/debug/herald');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

export const LAPTOP = { width: 1366, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** A TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** A fresh temporary directory, removed by `cleanup()`. */
export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Starts a program that prints `… listening on http(s)://ADDR` when ready (the hub, or an
 * example), and resolves with its URL, the dev `TOKEN` it printed (if any), and `stop()`.
 */
export function startProcess(bin, args, { env = {}, readyPattern = /listening on (https?:\/\/\S+)/i } = {}) {
  return new Promise((resolveStart, reject) => {
    const child = spawn(bin, args, {
      env: { ...process.env, HERALD_LOG: process.env.HERALD_LOG ?? 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let url = null;
    let token = null;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} did not start within 20 s:\n${output}`));
    }, 20000);
    const onData = (chunk) => {
      output += chunk.toString();
      const tokenMatch = /export TOKEN=(\S+)/.exec(output);
      if (tokenMatch) token = tokenMatch[1].replace(/^['"]|['"]$/g, '');
      if (!url) {
        const match = readyPattern.exec(output);
        if (match) url = match[1].replace(/\/$/, '');
      }
      // In dev mode the token line follows the listening line; wait for both.
      const wantsToken = args.includes('--dev');
      if (url && (!wantsToken || token)) {
        clearTimeout(timer);
        resolveStart({ url, token, child, output: () => output, stop: () => stopChild(child) });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code) => {
      if (!url) {
        clearTimeout(timer);
        reject(new Error(`${bin} exited with ${code} before it was ready:\n${output}`));
      }
    });
  });
}

/** Starts `herald serve` with `args` (plus `--listen` on `port`, a free one by default). */
export async function startHerald(args = ['--memory', '--dev'], { port } = {}) {
  const listen = port ?? (await freePort());
  const hub = await startProcess(HERALD_BIN, ['serve', '--listen', `127.0.0.1:${listen}`, ...args]);
  return { ...hub, port: listen };
}

/** Stops a child with SIGTERM (SIGKILL after 5 s) and waits for it to exit. */
export function stopChild(child) {
  return new Promise((resolveStop) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolveStop();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Launches Chromium headless with a fresh profile; `close()` also removes the profile.
 * `args` are extra command-line flags (e.g. to trust a test certificate).
 */
export async function launchBrowser({ args = [] } = {}) {
  const profile = tempDir('herald-e2e-profile-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: LAPTOP,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic',
      ...args,
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Opens a page and records its console errors and uncaught exceptions in `page.errors`.
 * `allow` lists patterns of errors a test provokes on purpose (a refused connection while
 * the hub restarts).
 */
export async function openPage(browser, { viewport = LAPTOP, allow = [] } = {}) {
  const page = await browser.context.newPage();
  await page.setViewportSize(viewport);
  page.errors = [];
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = `${message.text()} ${message.location()?.url ?? ''}`;
    if (!allow.some((pattern) => pattern.test(text))) page.errors.push(text);
  });
  page.on('pageerror', (error) => page.errors.push(`uncaught: ${error.message}`));
  return page;
}

/** Saves a full-page screenshot as e2e/artifacts/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Publishes over HTTP like any backend would, and returns the event id. */
export async function publish(hubUrl, token, fields) {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of [].concat(value)) body.append(name, item);
  }
  const response = await fetch(`${hubUrl}/.well-known/mercure`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
    body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`publish answered ${response.status}: ${text}`);
  return text.trim();
}

// What every browser test needs: Debian's chromium driven by playwright-core
// (no browser download), a real `herald serve` (the JS SDK's test harness),
// and a folder for screenshots. A missing chromium fails the test: it never
// skips.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export { Server, API_KEY, makeToken, waitFor, uniqueUser } from '../../clients/js/test/harness.js';

export const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.HERALD_BROWSER_ARTIFACTS || join(tmpdir(), 'herald-browser-artifacts');

// No network beyond the server under test: this machine (and CI) has none.
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
  '--disable-default-apps', '--disable-extensions', '--metrics-recording-only', '--mute-audio',
];

/** A fresh chromium (own profile) for one test, closed after it. */
export async function launchBrowser(t) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}: install Debian's chromium (scripts/test.sh does) or set HERALD_CHROMIUM`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'herald-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1440, height: 1000 },
    deviceScaleFactor: 1,
  });
  const problems = [];
  context.on('page', (page) => watch(page, problems));
  for (const page of context.pages()) watch(page, problems);
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return { context, problems };
}

// Page errors and console errors are collected: a test asserts there were none.
function watch(page, problems) {
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
}

/** Saves a full-page screenshot as a test artifact and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

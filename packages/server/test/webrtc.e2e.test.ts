// Issue #14's WebRTC example in Debian's Chromium: two pages join one room through presence, exchange offer,
// answer and ICE candidates as direct messages, open an RTCDataChannel and pass a message on it.
//
// Test traffic must stay on loopback, and Chromium would otherwise offer the machine's other addresses as ICE
// candidates. So the server and the browser both run inside a network namespace that holds only `lo`: every
// candidate is 127.0.0.1. Playwright drives Chromium over a pipe (stdio), which crosses the namespace unchanged,
// through a wrapper script that `ip netns exec`s the real binary.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { spawnHerald, type Running } from './helpers.js';
import { CHROMIUM, CHROMIUM_FLAGS } from './support/chromium.js';

/** Loopback ICE candidates, and plain addresses instead of mDNS names (which nothing in the namespace resolves). */
const WEBRTC_FLAGS = ['--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'];
const NAMESPACE = `herald-rtc-${process.pid}`;
/** Inside the namespace nothing else listens: a fixed port is free. */
const ORIGIN = 'http://127.0.0.1:7700';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).toString();

/** Why the test cannot run here, or undefined when it can: Chromium installed and a network namespace creatable. */
function unavailable(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed`;
  try {
    ip('netns', 'add', NAMESPACE);
    ip('netns', 'exec', NAMESPACE, 'ip', 'link', 'set', 'lo', 'up');
    return undefined;
  } catch (error) {
    try {
      ip('netns', 'delete', NAMESPACE);
    } catch {
      // it was never made
    }
    return `no network namespace (ip netns add needs root and CAP_SYS_ADMIN): ${(error as Error).message.split('\n')[0]}`;
  }
}

const skip = unavailable();

describe('the WebRTC example in Chromium, in a loopback-only network namespace', { skip: skip ?? false }, () => {
  let dir: string;
  let server: Running | undefined;
  let browser: Browser | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-webrtc-'));
    server = await spawnHerald(['serve', '--port', '7700', '--host', '127.0.0.1', '--data', join(dir, 'data'), '--log-level', 'warn'], { HERALD_EXAMPLES_ENABLED: 'true' }, [
      'ip',
      'netns',
      'exec',
      NAMESPACE,
    ]);
    const wrapper = join(dir, 'chromium-in-netns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${NAMESPACE} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await chromium.launch({ executablePath: wrapper, args: [...CHROMIUM_FLAGS, ...WEBRTC_FLAGS] });
  });

  after(async () => {
    await browser?.close();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    try {
      ip('netns', 'delete', NAMESPACE);
    } catch {
      // already gone
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const rtc = (page: Page, what: string) => page.evaluate(`window.rtc && window.rtc.${what}`);

  it('two pages in one room find each other through presence, signal with send, and talk over an RTCDataChannel', async () => {
    assert.equal(server!.url, ORIGIN);
    const context = await browser!.newContext();
    // Without media permission Chromium gathers host candidates on the default route's interface only, and a
    // loopback-only namespace has no default route: no candidate at all. With it (camera and microphone, never
    // used), it gathers on every interface, here only `lo`, which --allow-loopback-in-peer-connection admits.
    await context.grantPermissions(['camera', 'microphone'], { origin: ORIGIN });
    const alice = await context.newPage();
    const bob = await context.newPage();
    const errors: string[] = [];
    for (const page of [alice, bob]) {
      page.on('pageerror', (error) => errors.push(error.message));
      page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
    }
    await alice.goto(`${ORIGIN}/examples/webrtc/?room=test&name=alice`);
    await alice.waitForFunction(() => (window as any).rtc?.status === 'waiting for a peer', null, { timeout: 15_000 });
    await bob.goto(`${ORIGIN}/examples/webrtc/?room=test&name=bob`);
    for (const page of [alice, bob]) {
      await page.waitForFunction(() => (window as any).rtc?.open === true, null, { timeout: 30_000 }).catch(async (error: unknown) => {
        // What each page logged says where the signalling stopped.
        const states = await Promise.all([alice, bob].map((p) => p.evaluate(() => `${(window as any).rtc?.status}: ${document.getElementById('log')?.innerText}`)));
        throw new Error(`${(error as Error).message}\n${states.join('\n')}\n${errors.join('\n')}`);
      });
    }

    await alice.evaluate(() => (window as any).rtc.send('hello from alice, peer to peer'));
    await bob.waitForFunction(() => (window as any).rtc.received.includes('hello from alice, peer to peer'), null, { timeout: 10_000 });
    await bob.evaluate(() => (window as any).rtc.send('hello back'));
    await alice.waitForFunction(() => (window as any).rtc.received.includes('hello back'), null, { timeout: 10_000 });

    // The data channel runs between the browsers, over loopback: the selected pair's candidates are 127.0.0.1.
    const addresses = await alice.evaluate(async () => {
      const reports = new Map<string, any>();
      ((await ((window as any).rtc.pc as RTCPeerConnection).getStats()) as any).forEach((report: any) => reports.set(report.id, report));
      const found: string[] = [];
      for (const report of reports.values()) {
        if (report.type === 'candidate-pair' && report.nominated && report.state === 'succeeded') {
          for (const id of [report.localCandidateId, report.remoteCandidateId]) found.push(reports.get(id).address);
        }
      }
      return found;
    });
    assert.ok(addresses.length >= 2, `a selected candidate pair: ${JSON.stringify(addresses)}`);
    assert.ok(
      addresses.every((a) => a === '127.0.0.1'),
      `loopback candidates only: ${JSON.stringify(addresses)}`,
    );
    assert.deepEqual(await rtc(alice, 'received'), ['hello back']);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

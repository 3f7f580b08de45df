import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliveriesOf, sleep, startTestServer, until } from './helpers.js';

/** A receiver that answers 200 `delayMs` after each request arrives, counting what it got by webhook-id. */
async function slowReceiver(delayMs: number): Promise<{ server: Server; url: string; received: string[] }> {
  const received: string[] = [];
  const server = createServer((req, res) => {
    received.push(String(req.headers['webhook-id']));
    req.resume();
    setTimeout(() => res.writeHead(200).end(), delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

describe('delivery at a graceful stop', () => {
  it('lets an attempt in flight be answered and recorded, so the restarted server does not send it again', async () => {
    const receiver = await slowReceiver(800);
    const settings = { delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [0.2], jitter: 0 } };
    // A data directory of the test's own: a server's stop removes one it made itself.
    const dir = mkdtempSync(join(tmpdir(), 'herald-deploy-'));
    const first = await startTestServer(settings, dir);
    let second: Awaited<ReturnType<typeof startTestServer>> | undefined;
    try {
      const endpoint = await first.call('POST', '/v1/endpoints', { body: { url: receiver.url, channels: ['deploy'] } });
      assert.equal(endpoint.status, 201);
      assert.equal((await first.call('POST', '/v1/channels/deploy/events', { body: { data: { n: 1 } } })).status, 201);
      await until(() => receiver.received.length === 1, 5000, 'the attempt in flight');
      // A rolling deploy stops the node while the receiver is still answering.
      await first.stop();
      second = await startTestServer(settings, dir);
      const { list } = await deliveriesOf(second, endpoint.body.id);
      assert.deepEqual(
        list.map((d) => ({ status: d.status, attempts: d.attempts })),
        [{ status: 'succeeded', attempts: 1 }],
      );
      // Before, the delivery was still pending after the restart, and went out again.
      await sleep(1500);
      assert.equal(receiver.received.length, 1);
    } finally {
      await second?.stop();
      receiver.server.closeAllConnections();
      await new Promise((resolve) => receiver.server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startTestServer, until } from './helpers.js';
import { freePort } from './support/redis.js';

it('a node whose bus cannot connect at start says so in its log, and /readyz says degraded', async () => {
  // A port nothing listens on: as a mistyped --bus, or Redis not up yet.
  const port = await freePort();
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const h = await startTestServer({ bus: { url: `redis://127.0.0.1:${port}` } }, undefined, { logger });
  try {
    const ready = await h.call('GET', '/readyz', { token: null });
    assert.equal(ready.body.bus, 'down');
    // Unfixed, the bus was down before the listener came, and no line ever said so.
    await until(() => lines.some((l) => l.msg.startsWith('bus down')), 3000, 'a bus down line');
    assert.equal(lines.find((l) => l.msg.startsWith('bus down'))!.level, 50);
    // And a bus beside a SQLite store is no cluster: said at start.
    assert.ok(lines.some((l) => l.level === 40 && l.msg.startsWith('bus.url without store.url')));
  } finally {
    await h.stop();
  }
});

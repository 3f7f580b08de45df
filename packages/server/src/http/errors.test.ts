import { it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { storeError } from '../store/postgres/database.js';
import { clientErrorHandler, installErrorHandling } from './errors.js';
import { healthRoutes } from './routes/health.js';
import type { AppContext } from './context.js';

/** A Fastify app whose pino log (every level) is collected as lines. */
function appWithLog(): { app: FastifyInstance; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const app = Fastify({ loggerInstance: pino({ level: 'trace' }, sink), clientErrorHandler }) as unknown as FastifyInstance;
  return { app, lines };
}

it('logs a request Node could not parse without the bytes it was sent (tokens, Authorization)', async () => {
  const { app, lines } = appWithLog();
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const answer = await new Promise<string>((resolve, reject) => {
    let got = '';
    const socket = connect(port, '127.0.0.1', () =>
      socket.write('GET /v1/channels/a/events?token=query-s3cret HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer header-s3cret\r\nBad Header\r\n\r\n'),
    );
    socket.on('data', (chunk: Buffer) => (got += chunk.toString()));
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
  await app.close();
  assert.match(answer, /^HTTP\/1\.1 400 /);
  const logged = lines.filter((l) => l.includes('client error'));
  assert.equal(logged.length, 1);
  assert.match(logged[0]!, /HPE_INVALID_HEADER_TOKEN/, 'the reason is still logged');
  assert.doesNotMatch(logged[0]!, /rawPacket|s3cret/);
});

it('answers /readyz 503 while the store is unreachable without logging each probe as a failed request', async () => {
  const { app, lines } = appWithLog();
  installErrorHandling(app);
  const unreachable = storeError(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' }));
  const ctx = { ready: () => Promise.reject(unreachable), busState: () => 'up' } as unknown as AppContext;
  healthRoutes(app, ctx);
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers['retry-after'], '5');
    const body = JSON.parse(res.body) as { error: { code: string; message: string; details: unknown } };
    assert.equal(body.error.code, 'unavailable');
    assert.equal(body.error.message, 'Not ready: the store is unreachable (ECONNREFUSED).');
    assert.deepEqual(body.error.details, { reason: 'store_unreachable', store: 'down', bus: 'up' });
  }
  await app.close();
  // A load balancer probes every few seconds: an outage of an hour would otherwise be thousands of error lines.
  assert.deepEqual(lines.filter((l) => JSON.parse(l).level >= 50), []);
});

it('logs requests refused because the store is unavailable once, then once a minute, not once each', async () => {
  const { app, lines } = appWithLog();
  installErrorHandling(app);
  app.get('/down', async () => {
    throw storeError(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' }));
  });
  app.get('/bug', async () => {
    throw new Error('a fault of ours');
  });
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'GET', url: '/down' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers['retry-after'], '5');
  }
  for (let i = 0; i < 2; i++) assert.equal((await app.inject({ method: 'GET', url: '/bug' })).statusCode, 500);
  await app.close();
  const errors = lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } }).filter((l) => l.level >= 50);
  // Every request of an outage fails alike: the first is logged with its err, the rest are counted into a later line.
  assert.equal(errors.filter((l) => l.msg === 'request failed').length, 1);
  assert.match(errors.find((l) => l.msg === 'request failed')!.err!.message, /ECONNREFUSED/);
  // A fault of Herald's own is logged each time.
  assert.equal(errors.filter((l) => l.msg === 'unhandled error').length, 2);
});

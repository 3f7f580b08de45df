import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { storeError } from '../../store/postgres/database.js';
import { healthRoutes } from './health.js';
import type { AppContext } from '../context.js';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' });

describe('an unreachable PostgreSQL store', () => {
  it('answers requests, reads included, with a message about reaching the store, not about writes', () => {
    const error = storeError(refused()) as Error & { code: string };
    assert.equal(error.code, 'store_unavailable');
    assert.doesNotMatch(error.message, /cannot take writes/);
    assert.match(error.message, /cannot be reached; nothing was written/);
  });

  it('/readyz names the cause (the driver code), not the request message, and never the database address', async () => {
    const app = Fastify();
    const ctx = { ready: () => Promise.reject(storeError(refused())), busState: () => 'up' } as unknown as AppContext;
    healthRoutes(app, ctx);
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    const message = (JSON.parse(res.body) as { error: { message: string } }).error.message;
    assert.equal(message, 'Not ready: the store is unreachable (ECONNREFUSED).');
    assert.doesNotMatch(message, /10\.1\.2\.3/);
    await app.close();
  });
});

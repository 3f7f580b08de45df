import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attemptOutcome, countRealtimeDelivery, countSubscription, refusalReason } from './record.js';
import { registry, scrape, sources, type MetricsSource } from './registry.js';

async function value(name: string, labels = ''): Promise<number> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('metrics recording', () => {
  it('classifies outbound attempts into the fixed outcomes', () => {
    assert.equal(attemptOutcome(200, undefined), 'success');
    assert.equal(attemptOutcome(204, undefined), 'success');
    assert.equal(attemptOutcome(301, undefined), 'http_4xx');
    assert.equal(attemptOutcome(404, undefined), 'http_4xx');
    assert.equal(attemptOutcome(410, undefined), 'http_4xx');
    assert.equal(attemptOutcome(500, undefined), 'http_5xx');
    assert.equal(attemptOutcome(503, undefined), 'http_5xx');
    assert.equal(attemptOutcome(undefined, 'SSRF guard: loopback'), 'ssrf_refused');
    assert.equal(attemptOutcome(undefined, 'ESSRF: SSRF guard: x resolves to loopback'), 'ssrf_refused');
    assert.equal(attemptOutcome(undefined, 'UND_ERR_HEADERS_TIMEOUT: Headers Timeout Error'), 'timeout');
    assert.equal(attemptOutcome(undefined, 'UND_ERR_CONNECT_TIMEOUT: Connect Timeout Error'), 'timeout');
    assert.equal(attemptOutcome(undefined, 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9'), 'network');
    assert.equal(attemptOutcome(undefined, undefined), 'network');
  });

  it('maps refusal statuses to bounded reasons', () => {
    assert.deepEqual([400, 401, 403, 404, 503, 429].map(refusalReason), ['bad_request', 'unauthorized', 'forbidden', 'not_found', 'unavailable', 'other']);
  });

  it('folds the per-socket tallies into the counter at scrape time, once', async () => {
    const before = await value('herald_realtime_deliveries_total', '{transport="ws"}');
    for (let i = 0; i < 1000; i++) countRealtimeDelivery('ws');
    assert.equal(await value('herald_realtime_deliveries_total', '{transport="ws"}'), before + 1000);
    assert.equal(await value('herald_realtime_deliveries_total', '{transport="ws"}'), before + 1000, 'a second scrape adds nothing');
    countSubscription(1);
    countSubscription(1);
    countSubscription(-1);
    assert.equal(await value('herald_subscriptions_open'), 1);
    countSubscription(-1);
  });

  it('reports the delivery gauges as unknown (NaN), not 0, while the store cannot be read', async () => {
    const unreachable: MetricsSource = {
      store: 'postgres',
      connections: () => ({ ws: 0, sse: 0, long_poll: 0 }),
      busUp: () => true,
      deliveryState: () => Promise.reject(new Error('The store cannot be reached')),
    };
    // The store is read at most once a second: let an earlier scrape's reading go.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    sources.add(unreachable);
    try {
      assert.ok(Number.isNaN(await value('herald_deliveries', '{status="failed"}')), 'an alert on dead letters must not see 0');
      assert.ok(Number.isNaN(await value('herald_deliveries', '{status="pending"}')));
      assert.ok(Number.isNaN(await value('herald_endpoints_disabled')));
    } finally {
      sources.delete(unreachable);
    }
  });

  it('exports the SQLite families only while a server here runs on SQLite', async () => {
    const node = (store: 'sqlite' | 'postgres'): MetricsSource => ({ store, connections: () => ({ ws: 0, sse: 0, long_poll: 0 }), busUp: () => true });
    const family = /^# TYPE herald_store_checkpoint_failures_total counter$/m;
    const postgres = node('postgres');
    sources.add(postgres);
    try {
      assert.doesNotMatch(await scrape(), family, 'a PostgreSQL node has no checkpoint thread');
      const sqlite = node('sqlite');
      sources.add(sqlite);
      try {
        const text = await scrape();
        assert.match(text, family);
        assert.match(text, /^herald_store_checkpoint_failures_total 0$/m);
        assert.match(text, /^# TYPE herald_connections_open gauge$/m, 'and every other family');
      } finally {
        sources.delete(sqlite);
      }
    } finally {
      sources.delete(postgres);
    }
  });

  it('names every family herald_*', async () => {
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length >= 17, names.join());
    for (const name of names) assert.match(name, /^herald_/);
  });
});

describe('deploy/grafana/herald.json', () => {
  it('queries only families Herald exports', async () => {
    const { readFileSync } = await import('node:fs');
    const { collectProcessMetrics } = await import('./registry.js');
    collectProcessMetrics();
    const known = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const dashboard = readFileSync(new URL('../../../../deploy/grafana/herald.json', import.meta.url), 'utf8');
    const used = new Set([...dashboard.matchAll(/herald_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')));
    used.delete('herald_overview');
    assert.ok(used.size > 15);
    for (const name of used) assert.ok(known.has(name), `${name} is exported`);
  });
});

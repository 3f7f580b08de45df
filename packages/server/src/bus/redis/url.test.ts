import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRedisUrl } from './url.js';
import { transportFor } from '../create.js';
import { PostgresTransport, notifyChannel } from '../postgres/postgres-transport.js';
import { RedisTransport } from './redis-transport.js';

it('reads each Redis bus URL form', () => {
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6380/2'), { mode: 'single', tls: false, hosts: [{ host: '127.0.0.1', port: 6380 }], db: 2, prefix: 'herald' });
  assert.deepEqual(parseRedisUrl('rediss://:s%40cret@cache.example'), {
    mode: 'single',
    tls: true,
    hosts: [{ host: 'cache.example', port: 6379 }],
    password: 's@cret',
    prefix: 'herald',
  });
  const cluster = parseRedisUrl('redis+cluster://user:pw@a:7000,b:7001,[::1]:7002?prefix=prod');
  assert.equal(cluster.mode, 'cluster');
  assert.deepEqual(cluster.hosts, [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }, { host: '::1', port: 7002 }]);
  assert.equal(cluster.username, 'user');
  assert.equal(cluster.prefix, 'prod');
  const sentinel = parseRedisUrl('rediss+sentinel://:pw@s1,s2:26380/mymaster/1?sentinelPassword=sp');
  assert.deepEqual(
    { mode: sentinel.mode, tls: sentinel.tls, hosts: sentinel.hosts, master: sentinel.masterName, db: sentinel.db, sp: sentinel.sentinelPassword },
    { mode: 'sentinel', tls: true, hosts: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }], master: 'mymaster', db: 1, sp: 'sp' },
  );
});

it('refuses malformed Redis bus URLs without echoing them', () => {
  for (const bad of ['redis+sentinel://s1:26379', 'redis+cluster://a:1/0', 'redis://a:1,b:2', 'redis://a:1/x', 'redis://a?prefix=no%20spaces', 'memcached://a']) {
    assert.throws(() => parseRedisUrl(bad), (e: Error) => /bus URL/.test(e.message) && !e.message.includes(bad), bad);
  }
});

it('picks the transport from the scheme', () => {
  assert.ok(transportFor('redis+cluster://a:1,b:2') instanceof RedisTransport);
  assert.ok(transportFor('postgresql://u@h/db') instanceof PostgresTransport);
  assert.throws(() => transportFor('nats://x'), /bus.url must start with/);
});

it('keeps PostgreSQL NOTIFY channel names within 63 bytes', () => {
  assert.equal(notifyChannel({ channel: 'orders' }), 'herald:ch:orders');
  assert.equal(notifyChannel('all'), 'herald:all');
  const long = notifyChannel({ channel: 'x'.repeat(128) });
  assert.ok(Buffer.byteLength(long) <= 63);
  assert.notEqual(long, notifyChannel({ channel: 'y'.repeat(128) }));
});

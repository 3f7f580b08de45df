import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { banner } from './serve.js';

describe('the start-up banner', () => {
  it('tells a PostgreSQL node to reset the admin key with --store, on every node', () => {
    const text = banner('http://127.0.0.1:7701', 'node a, store: PostgreSQL', undefined, false, '--store');
    assert.match(text, /herald admin-key reset` \(same --store\)/);
    assert.doesNotMatch(text, /--data/);
  });

  it('tells a SQLite server to reset it with --data', () => {
    assert.match(banner('http://127.0.0.1:7700', 'data: ./herald-data', undefined, false), /\(same --data\)/);
  });

  it('says how long its poll line waits: 30 s, or limits.pollWaitMax when that is less', () => {
    assert.match(banner('http://127.0.0.1:7700', 'data: d', undefined, false), /Poll \(waits up to 30 s for news\)/);
    const short = banner('http://127.0.0.1:7700', 'data: d', undefined, false, '--data', 2);
    assert.match(short, /Poll \(waits up to 2 s for news\):\n {2}curl "http:\/\/127\.0\.0\.1:7700\/v1\/channels\/demo\/events\?after=0&wait=2"/);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeTraceparent, parseTraceparent, traceparentOfPayload, withTraceparent } from './traceparent.js';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('traceparent', () => {
  it('accepts the W3C example and keeps its fields', () => {
    assert.deepEqual(parseTraceparent(VALID), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1 });
    assert.equal(normalizeTraceparent(VALID), VALID);
  });

  it('ignores what the spec says to ignore', () => {
    for (const bad of [
      undefined,
      42,
      '',
      VALID.toUpperCase(),
      `ff${VALID.slice(2)}`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`,
      `${VALID}-extra`,
      VALID.slice(0, -1),
      ['a', 'b'],
    ]) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
  });

  it('reads a later version as version 00, dropping the fields it does not know', () => {
    assert.equal(normalizeTraceparent(`01${VALID.slice(2)}-future`), VALID);
  });

  it("adds to a caller's meta without replacing it, and never overrides the caller's own traceparent", () => {
    const other = '00-11111111111111111111111111111111-2222222222222222-00';
    const meta = { tenant: 'acme' };
    assert.deepEqual(withTraceparent(meta, VALID), { tenant: 'acme', traceparent: VALID });
    assert.deepEqual(meta, { tenant: 'acme' }, 'the input is not mutated');
    assert.deepEqual(withTraceparent({ traceparent: other }, VALID), { traceparent: other });
    assert.deepEqual(withTraceparent({ traceparent: 'garbage' }, VALID), { traceparent: VALID });
    assert.equal(withTraceparent(undefined, undefined), undefined);
    assert.deepEqual(withTraceparent(undefined, VALID), { traceparent: VALID });
  });

  it('finds the traceparent in a delivery payload only in meta', () => {
    assert.equal(traceparentOfPayload(JSON.stringify({ id: 'e', data: { x: 1 }, meta: { traceparent: VALID } })), VALID);
    assert.equal(traceparentOfPayload(JSON.stringify({ id: 'e', data: { traceparent: VALID } })), undefined);
    assert.equal(traceparentOfPayload(JSON.stringify({ id: 'e', data: 1 })), undefined);
    assert.equal(traceparentOfPayload(undefined), undefined);
  });
});

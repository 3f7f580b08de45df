import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PresenceRegistry, type MemberRecord } from './registry.js';

const member = (client: string, sub: string, extra: Partial<MemberRecord> = {}): MemberRecord => ({ channel: 'room', client, sub, info: null, node: 'n1', ...extra });

test('members are counted per channel and sub through joins, rejoins, leaves and a node going away', () => {
  const registry = new PresenceRegistry();
  registry.add(member('c1', 'ann'));
  registry.add(member('c2', 'ann', { node: 'n2' }));
  registry.add(member('c3', 'bob'));
  registry.add(member('c4', 'ann', { channel: 'hall' }));
  assert.deepEqual([registry.countOf('room', 'ann'), registry.countOf('room', 'bob'), registry.countOf('hall', 'ann')], [2, 1, 1]);

  // A rejoin (new info) replaces the member: still one.
  registry.add(member('c1', 'ann', { info: { name: 'Ann' } }));
  assert.equal(registry.countOf('room', 'ann'), 2);

  registry.remove('room', 'c1');
  assert.equal(registry.countOf('room', 'ann'), 1);
  // The members another node held leave with it.
  for (const record of registry.ofNode('n2')) registry.remove(record.channel, record.client);
  assert.equal(registry.countOf('room', 'ann'), 0);
  assert.equal(registry.countOf('room', 'bob'), 1);
  assert.equal(registry.countOf('nowhere', 'ann'), 0);
});

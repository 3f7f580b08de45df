import { it } from 'node:test';
import assert from 'node:assert/strict';
import { PresenceSet } from './presence.js';

const member = (client: string) => ({ client, sub: `user-${client}`, info: null });

it('a rejoin tells the differences from the list it knew: a leave for each member gone, a join for each new one', () => {
  const set = new PresenceSet('room', {}, () => {});
  const told: string[] = [];
  set.on('join', (m) => told.push(`join ${m.client}`));
  set.on('leave', (m) => told.push(`leave ${m.client}`));
  set.on('members', (list) => told.push(`members ${list.map((m) => m.client).join(',')}`));
  set.reset('a1', [member('a1'), member('b')]);
  assert.deepEqual(told, ['members a1,b'], 'the first join: the list alone');
  told.length = 0;
  // Reconnected as a2: meanwhile b left and c joined. Before, the list was compared with itself and no join was told.
  set.reset('a2', [member('a2'), member('c')]);
  assert.deepEqual(told, ['leave b', 'join c', 'members a2,c']);
});

// Topics wanted and dropped while the transport's LISTEN of every wanted topic is on the wire: squared before `up`.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { until } from '../../../test/support/wait.js';
import type { TransportHandler } from '../transport.js';
import { PostgresTransport } from './postgres-transport.js';

let db: TestDatabase;
before(async () => {
  // NOTIFY is scoped to a database, so a throwaway one keeps this test to itself.
  db = await createTestDatabase('herald_pg_transport');
});
after(async () => {
  await db?.drop();
});

/**
 * A relay to PostgreSQL that holds what its client sends from the first chunk holding `marker` until `release()`:
 * the query stays on the wire, unanswered, for as long as the test needs.
 */
async function holdingRelay(target: string, marker: string) {
  const upstream = new URL(target);
  let held: Buffer[] | undefined;
  let released = false;
  let remote: Socket | undefined;
  let seen!: () => void;
  const heldNow = new Promise<void>((resolve) => (seen = resolve));
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const to = connect(Number(upstream.port || 5432), upstream.hostname);
    remote = to;
    for (const socket of [client, to]) sockets.add(socket.on('error', () => {}));
    to.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (!released && (held || chunk.includes(marker))) {
        (held ??= []).push(chunk);
        seen();
        return;
      }
      to.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    heldNow,
    release() {
      released = true;
      for (const chunk of held ?? []) remote!.write(chunk);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

it('a topic dropped and one wanted while LISTEN is on the wire are squared before the state says up', async () => {
  const relay = await holdingRelay(db.url, 'LISTEN');
  const received: string[] = [];
  const handler: TransportHandler = { message: (_kind, message) => received.push(message), state: () => {}, error: () => {} };
  const late = new PostgresTransport(relay.url);
  const sender = new PostgresTransport(db.url);
  try {
    // Wanted before start: the LISTEN on connecting carries it, and is held.
    await late.subscribe({ channel: 'gone' });
    const started = late.start(handler, 10_000);
    await relay.heldNow;
    late.unsubscribe({ channel: 'gone' });
    await late.subscribe({ channel: 'new' });
    relay.release();
    await started;
    await sender.start({ message: () => {}, state: () => {}, error: () => {} }, 10_000);
    await sender.send({ channel: 'gone' }, 'to gone');
    await sender.send({ channel: 'new' }, 'to new');
    // Both were sent on one connection, in order: once the second has come, the first would have too.
    await until(() => received.includes('to new'), 5000, 'the message to the topic wanted meanwhile');
    assert.deepEqual(received, ['to new'], 'the topic wanted meanwhile hears; the one dropped meanwhile does not');
  } finally {
    await late.close();
    await sender.close();
    await relay.close();
  }
});

// The SDK on WebSocket against a server whose PostgreSQL store is unreachable for a while (a restart, a failover):
// a subscribe the server refuses with store_unavailable is sent again, and the channel flows once the store is back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Herald, type HeraldClientError } from '../src/index.js';
import { ADMIN_KEY, startTestServer, until, type TestServer } from '../../server/test/helpers.js';
import { createTestDatabase, type TestDatabase } from '../../server/test/support/postgres.js';

/** A TCP relay in front of PostgreSQL that can be cut (its connections dropped, new ones refused) and restored. */
class CuttableRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {}).on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server!.close(resolve));
  }
}

describe('@herald/client while the server cannot reach its store', () => {
  let db: TestDatabase;
  let h: TestServer;
  let relay: CuttableRelay;

  before(async () => {
    db = await createTestDatabase('herald_sdk_store_outage');
    const url = new URL(db.url);
    // A free port for the relay, kept across the cut so the server's pool reconnects to the same address.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    relay = new CuttableRelay(port, { host: url.hostname, port: Number(url.port || 5432) });
    await relay.open();
    url.hostname = '127.0.0.1';
    url.port = String(port);
    h = await startTestServer({ store: { url: url.toString() } });
  });

  after(async () => {
    await h?.stop();
    await db?.drop();
  });

  it('websocket: a subscribe refused with store_unavailable is tried again, and the events published once the store is back arrive', async () => {
    await relay.cut();
    const errors: HeraldClientError[] = [];
    const seen: unknown[] = [];
    const client = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['websocket'], backoff: { baseMs: 50, maxMs: 300 } });
    try {
      client.subscribe('outage', { after: 0, onError: (error) => errors.push(error) }, (event) => seen.push(event.data));
      // The store is down: the subscribe is refused (more than once, as it is tried again).
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assert.deepEqual(seen, []);
      await relay.open();
      await until(async () => (await h.call('POST', '/v1/channels/outage/events', { body: { data: 'after' } })).status === 201, 10_000, 'the store back');
      await until(() => seen.length > 0, 15_000, 'the event published after the outage');
      assert.deepEqual(seen, ['after']);
      assert.equal(client.state, 'connected');
      assert.deepEqual(errors, [], 'a refusal that passes is not an error of the subscription');
    } finally {
      client.close();
    }
  });
});

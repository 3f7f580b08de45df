// The SDK on SSE and long polling against a 2-node cluster (PostgreSQL + Redis), behind a TCP relay that sends new
// connections to node A until A is killed (kill -9), then to node B: 20 channels subscribed "from now on" through A,
// events published through B all along. Each event published after the subscription arrives once, in order, and
// each connection reads its channels' state with exactly one request.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Herald } from '../src/index.js';
import { CLI_ADMIN_KEY, sleep, until } from '../../server/test/helpers.js';
import { createTestDatabase, type TestDatabase } from '../../server/test/support/postgres.js';
import { startRedis, type RedisProcess } from '../../server/test/support/redis.js';
import { spawnNodes, type HeraldNode } from '../../server/test/support/cluster.js';

/** A TCP relay sending each new connection to the next of `targets` in turn, as a round-robin load balancer would. */
class SwitchingRelay {
  targets: number[];
  private next = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(targets: number[]) {
    this.targets = targets;
    this.server = createServer((client) => {
      const upstream = connect(this.targets[this.next++ % this.targets.length]!, '127.0.0.1');
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
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const CHANNELS = Array.from({ length: 20 }, (_, i) => `cl-${i}`);

describe('@herald/client against a 2-node cluster whose node dies (kill -9)', () => {
  let db: TestDatabase;
  let redis: RedisProcess;
  let nodes: HeraldNode[] = [];

  before(async () => {
    db = await createTestDatabase('herald_sdk_cluster');
    redis = await startRedis();
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    await db?.drop();
  });

  for (const transport of ['sse', 'poll'] as const) {
    it(`${transport}: from now on through A, published through B, A killed: nothing lost or repeated, one state read per connection`, async () => {
      const [a, b] = (nodes = await spawnNodes(2, { store: db.url, bus: redis.url, prefix: `sdk-${transport}-` })) as [HeraldNode, HeraldNode];
      const port = (n: HeraldNode) => Number(new URL(n.url).port);
      const relay = new SwitchingRelay([port(a)]);
      const url = await relay.listen();
      const requests: string[] = [];
      const watched: typeof fetch = async (input, init) => {
        const u = new URL(String(input));
        const stateRead = u.pathname === '/v1/events' && !u.searchParams.has('wait') && u.searchParams.get('limit') === '1';
        const kind = stateRead ? 'state' : u.pathname === '/v1/stream' ? 'stream' : u.pathname === '/v1/events' ? 'poll' : `other ${u.pathname}`;
        try {
          const res = await fetch(input, init);
          requests.push(`${kind}:${res.status}`);
          return res;
        } catch (error) {
          requests.push(`${kind}:failed`);
          throw error;
        }
      };
      const c = new Herald({ url, token: CLI_ADMIN_KEY, transports: [transport], fetch: watched, backoff: { baseMs: 50, maxMs: 300 }, heartbeatTimeoutMs: 60_000 });
      const seen = new Map<string, number[]>(CHANNELS.map((ch) => [ch, []]));
      let connects = 0;
      let running = true;
      c.on('state', (state: string) => {
        if (state === 'connected') connects++;
      });
      try {
        for (const ch of CHANNELS) c.subscribe(ch, (e) => seen.get(e.channel)!.push(e.data as number));
        await until(() => c.state === 'connected', 10_000, 'connected');
        // Published through B at a steady rate: 1 event every 10 ms, round the channels.
        const published = new Map<string, number[]>(CHANNELS.map((ch) => [ch, []]));
        const publisher = (async () => {
          for (let i = 0; running; i++) {
            const ch = CHANNELS[i % CHANNELS.length]!;
            const res = await b.publish(ch, i);
            assert.equal(res.status, 201, JSON.stringify(res.body));
            published.get(ch)!.push(i);
            await sleep(10);
          }
        })();
        await sleep(1500);
        await a.kill();
        // For a while each new connection goes to either node, as a load balancer that has not noticed yet would
        // send them: a state read answered by B may be followed by a stream refused by A.
        relay.targets = [port(a), port(b)];
        await sleep(700);
        relay.targets = [port(b)];
        await until(() => connects >= 2, 15_000, 'reconnected through B');
        await sleep(1500);
        running = false;
        await publisher;
        await until(() => CHANNELS.every((ch) => seen.get(ch)!.length >= published.get(ch)!.length), 10_000, 'every event published');
        await sleep(300); // time for any repeat to arrive
        for (const ch of CHANNELS) assert.deepEqual(seen.get(ch), published.get(ch), ch);
        // Each connection attempt reads the state once, then streams or polls; a poll that failed ends the connection.
        assert.ok(connects >= 2, 'reconnected');
        assert.equal(requests[0], 'state:200');
        requests.forEach((r, i) => {
          const previous = requests[i - 1];
          if (r.startsWith('state')) assert.notEqual(previous, 'state:200', `a second state read for one connection, at ${i}: ${requests.join(' ')}`);
          else if (r.startsWith('stream') || r.startsWith('poll')) assert.ok(previous === 'state:200' || previous === 'poll:200', `${r} at ${i} without a state read: ${requests.join(' ')}`);
          else assert.fail(`an unexpected request: ${r}`);
        });
      } finally {
        running = false;
        c.close();
        await relay.close();
        await Promise.all(nodes.map((n) => n.stop()));
      }
    });
  }
});

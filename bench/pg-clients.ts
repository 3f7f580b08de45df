// node --conditions=herald-source --import tsx bench/pg-clients.ts
// Compares the two PostgreSQL clients, pg (node-postgres) and postgres (porsager), on the
// shapes Herald's append path uses, against the server in HERALD_TEST_POSTGRES_URL, each in
// a fresh database. Every commit is durable (synchronous_commit on). Figures are events/s.
import pg from 'pg';
import postgres from 'postgres';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '../packages/server/test/support/postgres.js';
import { openPostgresStorage } from '../packages/server/src/store/postgres/open.js';
import { openSqliteStorage } from '../packages/server/src/store/sqlite/open.js';
import type { EventStore, Storage } from '../packages/server/src/store/types.js';

const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const BATCHES = Number(process.env.BENCH_BATCHES ?? 60);
const SINGLES = Number(process.env.BENCH_SINGLES ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

const SCHEMA = `
  CREATE TABLE channels (cid serial PRIMARY KEY, name text UNIQUE NOT NULL, head bigint NOT NULL DEFAULT 0);
  CREATE TABLE events (cid int NOT NULL, seq bigint NOT NULL, id text NOT NULL UNIQUE, type text NOT NULL,
    time bigint NOT NULL, data text NOT NULL, meta text, PRIMARY KEY (cid, seq));
  INSERT INTO channels (name) SELECT 'c' || g FROM generate_series(1, 64) g;`;
const HEAD = 'UPDATE channels SET head = head + $2 WHERE cid = $1 RETURNING head';
const INSERT_MANY = `INSERT INTO events (cid, seq, id, type, time, data, meta)
  SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])`;
const INSERT_ONE = 'INSERT INTO events (cid, seq, id, type, time, data, meta) VALUES ($1, $2, $3, $4, $5, $6, $7)';

let idCounter = 0;
const payload = JSON.stringify({ orderId: 12345, total: 99.5, currency: 'EUR', items: ['a', 'b'] });
type Columns = [number[], number[], string[], string[], number[], string[], Array<string | null>];
function columns(cid: number, firstSeq: number, n: number): Columns {
  const c: Columns = [[], [], [], [], [], [], []];
  for (let i = 0; i < n; i++) {
    c[0].push(cid);
    c[1].push(firstSeq + i);
    c[2].push(`evt_bench_${++idCounter}`);
    c[3].push('order.created');
    c[4].push(Date.now());
    c[5].push(payload);
    c[6].push(null);
  }
  return c;
}

/** What each client must do; the bodies are the same SQL, only the driver calls differ. */
interface Client {
  name: string;
  /** One transaction: allocate n seqs on the channel, insert n rows in one statement, commit. */
  batch(cid: number, n: number): Promise<void>;
  /** One transaction with a savepoint, as group commit wraps each request: head, insert, release, commit. */
  smallTxn(cid: number): Promise<void>;
  /** One row, autocommit: a single round trip. */
  single(cid: number, seq: number): Promise<void>;
  end(): Promise<void>;
}

function nodePostgres(url: string): Client {
  const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
  pool.on('error', () => {}); // an idle connection closed by the server: the pool replaces it
  async function txn(body: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await body(c);
      await c.query('COMMIT');
    } catch (error) {
      await c.query('ROLLBACK');
      throw error;
    } finally {
      c.release();
    }
  }
  return {
    name: 'pg',
    batch: (cid, n) =>
      txn(async (c) => {
        const head = Number((await c.query<{ head: string }>(HEAD, [cid, n])).rows[0]!.head);
        await c.query(INSERT_MANY, columns(cid, head - n + 1, n));
      }),
    smallTxn: (cid) =>
      txn(async (c) => {
        await c.query('SAVEPOINT r');
        const head = Number((await c.query<{ head: string }>(HEAD, [cid, 1])).rows[0]!.head);
        await c.query(INSERT_MANY, columns(cid, head, 1));
        await c.query('RELEASE SAVEPOINT r');
      }),
    single: async (cid, seq) => {
      await pool.query(INSERT_ONE, columns(cid, seq, 1).map((col) => col[0]));
    },
    end: () => pool.end(),
  };
}

/** Named prepared statements, as its tagged templates use: otherwise every call pays a Describe round trip. */
const PREPARED = { prepare: true };

function porsager(url: string): Client {
  const sql = postgres(url, { max: CONCURRENCY, onnotice: () => {} });
  return {
    name: 'postgres',
    batch: async (cid, n) => {
      await sql.begin(async (tx) => {
        const [row] = await tx.unsafe<Array<{ head: string }>>(HEAD, [cid, n], PREPARED);
        await tx.unsafe(INSERT_MANY, columns(cid, Number(row!.head) - n + 1, n) as never, PREPARED);
      });
    },
    smallTxn: async (cid) => {
      await sql.begin(async (tx) => {
        await tx.savepoint(async (sp) => {
          const [row] = await sp.unsafe<Array<{ head: string }>>(HEAD, [cid, 1], PREPARED);
          await sp.unsafe(INSERT_MANY, columns(cid, Number(row!.head), 1) as never, PREPARED);
        });
      });
    },
    single: async (cid, seq) => {
      await sql.unsafe(INSERT_ONE, columns(cid, seq, 1).map((col) => col[0]) as never, PREPARED);
    },
    end: () => sql.end(),
  };
}

async function rate(events: number, run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return (events / (performance.now() - start)) * 1000;
}

/** `total` calls of `fn`, at most `width` in flight. */
async function spread(total: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (next < total) await fn(next++); }));
}

async function measure(make: (url: string) => Client): Promise<Record<string, number>> {
  const db = await createTestDatabase('herald_bench');
  const setup = new pg.Client({ connectionString: db.url });
  await setup.connect();
  await setup.query(SCHEMA);
  await setup.end();
  const client = make(db.url);
  try {
    await client.batch(1, 10); // warm up the connections and statement caches
    return {
      'batched, 1 txn in flight': await rate(BATCH * BATCHES, () => spread(BATCHES, 1, () => client.batch(2, BATCH))),
      'batched, 4 channels in parallel': await rate(BATCH * BATCHES, () => spread(BATCHES, 4, (i) => client.batch(3 + (i % 4), BATCH))),
      'single-row txn+savepoint, sequential': await rate(SINGLES / 4, () => spread(SINGLES / 4, 1, () => client.smallTxn(10))),
      [`single-row txn+savepoint, ${CONCURRENCY} in flight`]: await rate(SINGLES, () =>
        spread(SINGLES, CONCURRENCY, (i) => client.smallTxn(11 + (i % CONCURRENCY))),
      ),
      'single-row autocommit, sequential': await rate(SINGLES / 4, () => spread(SINGLES / 4, 1, (i) => client.single(40, i + 1))),
      [`single-row autocommit, ${CONCURRENCY} in flight`]: await rate(SINGLES, () => spread(SINGLES, CONCURRENCY, (i) => client.single(41, i + 1))),
    };
  } finally {
    await client.end();
    await db.drop();
  }
}

async function main(): Promise<void> {
  console.log(`bench:pg-clients  batch ${BATCH} x ${BATCHES}, ${SINGLES} single rows, ${CONCURRENCY} connections, node ${process.version}`);
  const results = [await measure(nodePostgres), await measure(porsager)];
  // Second round in reverse order, so neither client always runs on a warmer server.
  const again = [await measure(porsager), await measure(nodePostgres)].reverse();
  console.log(`${'events/s (best of 2)'.padEnd(42)} ${'pg'.padStart(10)} ${'postgres'.padStart(10)}`);
  for (const label of Object.keys(results[0]!)) {
    const best = (i: number) => Math.max(results[i]![label]!, again[i]![label]!);
    console.log(`${label.padEnd(42)} ${best(0).toFixed(0).padStart(10)} ${best(1).toFixed(0).padStart(10)}`);
  }
}

/** The whole append path of a Herald store (group commit, savepoints, dedupe), `width` requests in flight. */
async function storeRate(events: EventStore, perRequest: number, requests: number, width: number): Promise<number> {
  const make = () => Array.from({ length: perRequest }, (_, i) => ({
    channel: `bench-${i % 4}`, id: `evt_store_${++idCounter}`, type: 'tick', data: JSON.parse(payload) as unknown, time: Date.now(),
  }));
  return rate(perRequest * requests, () => spread(requests, width, async () => void (await events.append({ events: make() }))));
}

async function measureStores(): Promise<void> {
  const db = await createTestDatabase('herald_bench');
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-'));
  const stores: Array<[string, Storage]> = [
    ['postgres store', await openPostgresStorage({ url: db.url })],
    ['sqlite store', await openSqliteStorage({ dataDir: dir })],
  ];
  console.log(`\n${'Herald store, durable events/s'.padEnd(42)} ${stores.map(([n]) => n.padStart(16)).join('')}`);
  const cases: Array<[string, number, number, number]> = [
    ['100-event requests, 64 in flight', 100, 1000, 64],
    ['1000-event requests, 4 in flight', 1000, 100, 4],
    ['1-event requests, 64 in flight', 1, 20_000, 64],
    ['1-event requests, sequential', 1, 1000, 1],
  ];
  try {
    for (const [label, perRequest, requests, width] of cases) {
      const figures: number[] = [];
      for (const [, storage] of stores) figures.push(await storeRate(storage.events, perRequest, requests, width));
      console.log(`${label.padEnd(42)} ${figures.map((f) => f.toFixed(0).padStart(16)).join('')}`);
    }
  } finally {
    for (const [, storage] of stores) await storage.close();
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
}

await main();
await measureStores();

// A throwaway PostgreSQL database per test file (or benchmark), on the server
// named by HERALD_TEST_POSTGRES_URL. Tests never touch a database they did not
// create, so several test files, and several engineers, can share one server.
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';

export const TEST_POSTGRES_URL = process.env.HERALD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** A connection URL for the new database. */
  url: string;
  /** Drops the database, closing whatever connections are still open on it. */
  drop(): Promise<void>;
}

/** Runs one statement on the server's maintenance database (CREATE/DROP DATABASE cannot run in a transaction). */
export async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(prefix = 'herald_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

export interface FaultyLink {
  /** A URL like the target's, through this link. */
  url: string;
  /** Drops every connection and refuses new ones: the server looks down. */
  cut(): void;
  /** Keeps connections open but passes nothing either way: the server looks hung, or the network lost. */
  blackhole(): void;
  /** Back to normal; connections broken meanwhile stay broken. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A TCP relay in front of the PostgreSQL server, to make it unreachable for
 * one client without stopping the server everyone else shares.
 */
export async function faultyLinkTo(target: string): Promise<FaultyLink> {
  const upstream = new URL(target);
  let mode: 'pass' | 'cut' | 'blackhole' = 'pass';
  const pairs = new Set<[Socket, Socket]>();
  /** Every socket either side, so `cut` and `close` can end them all. */
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {}).on('close', () => sockets.delete(socket));
    return socket;
  };
  const server = createServer((client) => {
    track(client);
    if (mode === 'cut') return void client.destroy();
    if (mode === 'blackhole') return void client.pause();
    const remote = track(connect(Number(upstream.port || 5432), upstream.hostname));
    const pair: [Socket, Socket] = [client, remote];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      remote.destroy();
    };
    for (const socket of pair) socket.on('close', drop);
    client.pipe(remote);
    remote.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  const cut = () => {
    mode = 'cut';
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: url.toString(),
    cut,
    blackhole() {
      mode = 'blackhole';
      for (const [client, remote] of pairs) {
        client.unpipe(remote);
        remote.unpipe(client);
        client.pause();
        remote.pause();
      }
    },
    restore() {
      mode = 'pass';
    },
    async close() {
      cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

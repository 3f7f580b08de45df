import { createHash } from 'node:crypto';
import pg from 'pg';
import type { BusState } from '../types.js';
import type { BusTransport, Topic, TransportHandler } from '../transport.js';
import { HealthCheck } from '../health.js';
import { squareTopics } from '../subscriptions.js';

export function isPostgresUrl(url: string): boolean {
  return url.startsWith('postgres://') || url.startsWith('postgresql://');
}

/** PostgreSQL identifiers, NOTIFY channels included, are cut at 63 bytes. */
const MAX_NAME_BYTES = 63;
const CHANNEL_PREFIX = 'herald:ch:';
const ALL = 'herald:all';

/** The NOTIFY channel for a topic; names that would be cut are hashed (a collision only costs a message to filter). */
export function notifyChannel(topic: Topic): string {
  if (topic === 'all') return ALL;
  const name = CHANNEL_PREFIX + topic.channel;
  if (Buffer.byteLength(name) <= MAX_NAME_BYTES) return name;
  return `${CHANNEL_PREFIX}#${createHash('sha256').update(topic.channel).digest('hex').slice(0, 40)}`;
}

export interface PostgresTransportOptions {
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
}

/**
 * LISTEN/NOTIFY between nodes, for a deployment that wants PostgreSQL only.
 * One dedicated connection (LISTEN belongs to a session, so it cannot come
 * from a pool) listens and notifies. Notifications are scoped to the
 * database, so Herald clusters in separate databases do not hear each other.
 * A NOTIFY payload must be under 8000 bytes: bigger batches travel as hints.
 */
export class PostgresTransport implements BusTransport {
  readonly maxMessageBytes = 7999;
  private readonly wanted = new Set<string>();
  private readonly health: HealthCheck;
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private handler: TransportHandler | undefined;
  private state: BusState = 'down';
  private closed = false;
  private retryDelay = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private waitUp: (() => void) | undefined;

  constructor(
    private readonly url: string,
    options: PostgresTransportOptions = {},
  ) {
    this.health = new HealthCheck(
      async () => {
        if (!this.client) throw new Error('postgres bus not connected');
        await this.client.query('SELECT 1');
      },
      (ok, error) => {
        if (ok || !this.client) return;
        this.handler?.error(error);
        this.lost(this.client);
      },
      options.healthIntervalMs ?? 1000,
      options.healthTimeoutMs ?? 1500,
    );
  }

  async start(handler: TransportHandler, timeoutMs: number): Promise<void> {
    this.handler = handler;
    const up = new Promise<void>((resolve) => (this.waitUp = resolve));
    this.connect();
    this.health.start();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([up, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  async subscribe(topic: Topic): Promise<void> {
    const name = notifyChannel(topic);
    if (this.wanted.has(name)) return;
    this.wanted.add(name);
    if (this.state !== 'up') return;
    await this.client?.query(`LISTEN ${pg.escapeIdentifier(name)}`).catch((error: unknown) => this.handler?.error(error));
  }

  unsubscribe(topic: Topic): void {
    const name = notifyChannel(topic);
    if (!this.wanted.delete(name) || this.state !== 'up') return;
    this.client?.query(`UNLISTEN ${pg.escapeIdentifier(name)}`).catch((error: unknown) => this.handler?.error(error));
  }

  async publish(channel: string, message: string): Promise<void> {
    if (!this.client || this.state !== 'up') throw new Error('postgres bus is down');
    await this.client.query('SELECT pg_notify($1, $3), pg_notify($2, $3)', [notifyChannel({ channel }), ALL, message]);
  }

  async send(topic: Topic, message: string): Promise<void> {
    if (!this.client || this.state !== 'up') throw new Error('postgres bus is down');
    await this.client.query('SELECT pg_notify($1, $2)', [notifyChannel(topic), message]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.health.stop();
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    this.setState('down');
    await client?.end().catch(() => {});
  }

  private connect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = this.open()
      .catch((error: unknown) => {
        if (this.state === 'up') this.handler?.error(error);
        this.scheduleReconnect();
      })
      .finally(() => (this.connecting = undefined));
  }

  private async open(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 2000, keepAlive: true });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (client !== this.client || n.payload === undefined) return;
      this.handler?.message(n.channel === ALL ? 'all' : 'channel', n.payload);
    });
    await client.connect();
    if (this.closed) {
      await client.end();
      return;
    }
    // Every wanted topic is listened to again before the state says `up`.
    const names = [...this.wanted];
    if (names.length > 0) await client.query(names.map((name) => `LISTEN ${pg.escapeIdentifier(name)}`).join('; '));
    // Topics wanted or dropped while LISTEN ran are squared now, on the client that is current from here on, and
    // until nothing changed during the last round: no await lies between that check and `up`.
    this.client = client;
    const listened = new Set(names);
    for (let change = squareTopics(this.wanted, listened); change; change = squareTopics(this.wanted, listened)) {
      const commands = [...change.missing.map((name) => `LISTEN ${pg.escapeIdentifier(name)}`), ...change.unwanted.map((name) => `UNLISTEN ${pg.escapeIdentifier(name)}`)];
      await client.query(commands.join('; '));
    }
    this.retryDelay = 0;
    this.setState('up');
  }

  /** The connection broke: `down`, and a new one after a short, growing pause. */
  private lost(client: pg.Client): void {
    if (client !== this.client) return;
    this.client = undefined;
    client.end().catch(() => {});
    this.setState('down');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.retryDelay = Math.min(Math.max(100, this.retryDelay * 2), 1000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, this.retryDelay);
    this.reconnectTimer.unref();
  }

  private setState(state: BusState): void {
    if (state === this.state) return;
    this.state = state;
    if (state === 'up') this.waitUp?.();
    this.handler?.state(state);
  }
}

import type { EventStore } from '../store/types.js';
import type { Bus } from './types.js';
import { LocalBus } from './local-bus.js';
import { ClusterBus, type ClusterBusOptions } from './cluster-bus.js';
import type { BusTransport } from './transport.js';
import { isRedisUrl, parseRedisUrl } from './redis/url.js';
import { RedisTransport } from './redis/redis-transport.js';
import { isPostgresUrl, PostgresTransport } from './postgres/postgres-transport.js';

export interface BusDeps extends Omit<ClusterBusOptions, 'store'> {
  /** The log; a networked bus reads it while its link is down and to resolve hints. */
  store: EventStore;
}

/** Which transport a `bus.url` names; throws on an unknown scheme or a malformed URL. */
export function transportFor(url: string): BusTransport {
  if (isRedisUrl(url)) return new RedisTransport(parseRedisUrl(url));
  if (isPostgresUrl(url)) return new PostgresTransport(url);
  throw new Error('bus.url must start with redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel://, rediss+sentinel://, postgres:// or postgresql://');
}

/**
 * The bus for `bus.url`: none means this process is the whole cluster
 * (LocalBus). Otherwise a ClusterBus over Redis or PostgreSQL, connected
 * before it resolves; if the link is not up within `connectTimeoutMs` it
 * still resolves, `down`, serving listeners from the log and reconnecting
 * in the background, so a Redis outage never keeps Herald from starting.
 */
export async function createBus(url: string | undefined, deps: BusDeps): Promise<Bus> {
  if (!url) return new LocalBus();
  const bus = new ClusterBus(transportFor(url), deps);
  await bus.start();
  return bus;
}

import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './url.js';

/** Reconnect soon after a restart (tests restart Redis on the same port) without hammering a dead server. */
const retry = (times: number) => Math.min(100 * times, 1000);

/** The commands the transport needs, the same for one server, Sentinel and Cluster. */
export interface RedisPair {
  /** Publishes and health probes; fails at once while disconnected rather than queueing. */
  publisher: Redis | Cluster;
  /** Subscriptions only. */
  subscriber: Redis | Cluster;
  sharded: boolean;
}

function redisOptions(target: RedisTarget): RedisOptions {
  return {
    username: target.username,
    password: target.password,
    db: target.db,
    tls: target.tls ? {} : undefined,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    // The transport resubscribes itself once the link is back, then says `up`.
    autoResubscribe: false,
  };
}

function connect(target: RedisTarget, role: 'publisher' | 'subscriber'): Redis | Cluster {
  const base = redisOptions(target);
  const enableOfflineQueue = role === 'subscriber';
  if (target.mode === 'cluster') {
    const options: ClusterOptions = {
      redisOptions: base,
      clusterRetryStrategy: retry,
      enableOfflineQueue,
      shardedSubscribers: role === 'subscriber',
      // Nodes that restart without a topology change must be reconnected; the default waits for a MOVED.
      clusterNodeRetryStrategy: retry,
    };
    return new Cluster(target.hosts, options);
  }
  const options: RedisOptions = { ...base, retryStrategy: retry, enableOfflineQueue };
  if (target.mode === 'sentinel') {
    return new Redis({
      ...options,
      sentinels: target.hosts,
      name: target.masterName!,
      sentinelPassword: target.sentinelPassword,
      sentinelRetryStrategy: retry,
      enableTLSForSentinelMode: target.tls,
    });
  }
  return new Redis({ ...options, host: target.hosts[0]!.host, port: target.hosts[0]!.port });
}

export function connectPair(target: RedisTarget): RedisPair {
  return { publisher: connect(target, 'publisher'), subscriber: connect(target, 'subscriber'), sharded: target.mode === 'cluster' };
}

/**
 * Where the Redis bus connects, from `bus.url`:
 *
 * - `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS): one server.
 * - `redis+cluster://[user:pass@]host:port,host:port,…`, `rediss+cluster://…`:
 *   Redis Cluster, any reachable nodes as seeds; sharded pub/sub.
 * - `redis+sentinel://[user:pass@]host:port,host:port,…/mastername[/db]`,
 *   `rediss+sentinel://…`: the master that Sentinel names, followed across
 *   failovers. The credentials are the master's; `?sentinelPassword=` is
 *   the sentinels' own.
 *
 * Every form takes `?prefix=` (default `herald`), the start of every pub/sub
 * channel name, for several Herald clusters sharing one Redis.
 */
export interface RedisTarget {
  mode: 'single' | 'cluster' | 'sentinel';
  tls: boolean;
  hosts: Array<{ host: string; port: number }>;
  username?: string | undefined;
  password?: string | undefined;
  db?: number | undefined;
  masterName?: string | undefined;
  sentinelPassword?: string | undefined;
  prefix: string;
}

const SCHEMES: Record<string, { mode: RedisTarget['mode']; tls: boolean }> = {
  'redis:': { mode: 'single', tls: false },
  'rediss:': { mode: 'single', tls: true },
  'redis+cluster:': { mode: 'cluster', tls: false },
  'rediss+cluster:': { mode: 'cluster', tls: true },
  'redis+sentinel:': { mode: 'sentinel', tls: false },
  'rediss+sentinel:': { mode: 'sentinel', tls: true },
};

export function isRedisUrl(url: string): boolean {
  return Object.keys(SCHEMES).some((scheme) => url.startsWith(`${scheme}//`));
}

function parseHost(spec: string, defaultPort: number): { host: string; port: number } {
  // [v6::addr]:port, host:port, or host alone.
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(spec);
  if (!match) throw new Error(`bad host "${spec}" in the Redis bus URL`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: match[2] ? Number(match[2]) : defaultPort };
}

/** Throws on anything it cannot read, naming the part, never echoing credentials. */
export function parseRedisUrl(url: string): RedisTarget {
  const match = /^([a-z+]+:)\/\/(?:([^@/]*)@)?([^/?]+)(\/[^?]*)?(?:\?(.*))?$/.exec(url);
  const scheme = match && SCHEMES[match[1]!];
  if (!match || !scheme) throw new Error('the bus URL must start with redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://');
  const [, , userinfo, hostList, path = '', query = ''] = match;
  const target: RedisTarget = {
    ...scheme,
    hosts: hostList!.split(',').map((h) => parseHost(h.trim(), scheme.mode === 'sentinel' ? 26379 : 6379)),
    prefix: 'herald',
  };
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    const user = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
    if (user) target.username = user;
    if (colon >= 0) target.password = decodeURIComponent(userinfo.slice(colon + 1));
  }
  const segments = path.split('/').filter(Boolean);
  if (scheme.mode === 'sentinel') {
    target.masterName = segments.shift();
    if (!target.masterName) throw new Error('a redis+sentinel:// bus URL needs the master name as its path: redis+sentinel://host:26379/mymaster');
  }
  if (segments.length > 0) {
    if (scheme.mode === 'cluster') throw new Error('Redis Cluster has no database numbers: drop the path from the bus URL');
    if (segments.length > 1 || !/^\d+$/.test(segments[0]!)) throw new Error('the path of a Redis bus URL is a database number');
    target.db = Number(segments[0]);
  }
  if (scheme.mode !== 'sentinel' && scheme.mode !== 'cluster' && target.hosts.length > 1) {
    throw new Error('a redis:// bus URL names one server; use redis+cluster:// or redis+sentinel:// for several');
  }
  const params = new URLSearchParams(query);
  const prefix = params.get('prefix');
  if (prefix !== null) {
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)) throw new Error('the bus URL prefix must match [A-Za-z0-9_.:-]{1,64}');
    target.prefix = prefix;
  }
  const sentinelPassword = params.get('sentinelPassword');
  if (sentinelPassword !== null) target.sentinelPassword = sentinelPassword;
  return target;
}

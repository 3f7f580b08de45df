import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envName, loadConfig, unknownEnvNames } from './load.js';

const dir = () => mkdtempSync(join(tmpdir(), 'herald-config-'));

it('names environment variables after the config path', () => {
  assert.equal(envName(['delivery', 'retrySchedule']), 'HERALD_DELIVERY_RETRY_SCHEDULE');
  assert.equal(envName(['dataDir']), 'HERALD_DATA_DIR');
  assert.equal(envName(['limits', 'bodyBytes']), 'HERALD_LIMITS_BODY_BYTES');
});

it('has defaults for everything', () => {
  const cwd = dir();
  const config = loadConfig({ env: {}, cwd });
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 7700);
  assert.equal(config.dataDir, join(cwd, 'herald-data'));
  assert.equal(config.retention.maxEvents, 10_000);
  assert.equal(config.retention.maxAge, 86_400);
  assert.equal(config.limits.bodyBytes, 1_048_576);
  assert.deepEqual(config.channels.public, []);
});

it('layers defaults < file < environment < flags', () => {
  const cwd = dir();
  const file = join(cwd, 'custom.json');
  writeFileSync(file, JSON.stringify({ port: 1000, host: '0.0.0.0', retention: { maxEvents: 5, maxAge: 60 }, channels: { public: ['a'] } }));
  const config = loadConfig({
    cwd,
    file,
    env: { HERALD_PORT: '2000', HERALD_RETENTION_MAX_EVENTS: '7', HERALD_CHANNELS_PUBLIC: 'news:*, status', HERALD_URL: 'ignored' },
    flags: { port: 3000 },
  });
  assert.equal(config.port, 3000, 'flag beats env');
  assert.equal(config.host, '0.0.0.0', 'file beats default');
  assert.equal(config.retention.maxEvents, 7, 'env beats file');
  assert.equal(config.retention.maxAge, 60, 'file value kept beside an env override in the same object');
  assert.deepEqual(config.channels.public, ['news:*', 'status'], 'lists are comma-separated');
});

it('reads herald.json from the working directory when no file is named', () => {
  const cwd = dir();
  writeFileSync(join(cwd, 'herald.json'), JSON.stringify({ port: 4321 }));
  assert.equal(loadConfig({ env: {}, cwd }).port, 4321);
});

it('refuses unknown keys, naming the key and where it came from', () => {
  const cwd = dir();
  const file = join(cwd, 'herald.json');
  writeFileSync(file, JSON.stringify({ retention: { maxEvent: 5 } }));
  assert.throws(() => loadConfig({ env: {}, cwd }), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /Unknown config key "retention\.maxEvent"/);
    assert.ok(e.message.includes(file));
    return true;
  });
});

it('refuses values of the wrong type with the env name to fix', () => {
  assert.throws(
    () => loadConfig({ env: { HERALD_PORT: 'eighty' }, cwd: dir() }),
    (e: unknown) => e instanceof ConfigError && /port \(env HERALD_PORT\)/.test(e.message),
  );
  assert.throws(() => loadConfig({ env: { HERALD_LIMITS_BODY_BYTES: '-1' }, cwd: dir() }), ConfigError);
  // Read as decimal and finite, and refused showing what was given (it was 6699, and `got null`).
  assert.throws(() => loadConfig({ env: { HERALD_PORT: '0x1A2B' }, cwd: dir() }), (e: unknown) => e instanceof ConfigError && /port \(env HERALD_PORT\): .*got "0x1A2B"/.test(e.message));
  assert.throws(() => loadConfig({ env: { HERALD_RETENTION_MAX_AGE: 'Infinity' }, cwd: dir() }), (e: unknown) => e instanceof ConfigError && /got "Infinity"/.test(e.message));
  assert.throws(() => loadConfig({ env: { HERALD_RETENTION_MAX_AGE: '1e400' }, cwd: dir() }), (e: unknown) => e instanceof ConfigError && /got "1e400"/.test(e.message));
  assert.equal(loadConfig({ env: { HERALD_RETENTION_MAX_AGE: '1.5e3', HERALD_DELIVERY_JITTER: '.5' }, cwd: dir() }).retention.maxAge, 1500);
  assert.throws(() => loadConfig({ env: {}, cwd: dir(), file: 'missing.json' }), /does not exist/);
});

it('refuses more than an hour for a setting that runs a timer, which Node would run every millisecond past 24.8 days', () => {
  for (const env of ['HERALD_SSE_HEARTBEAT', 'HERALD_WS_HEARTBEAT', 'HERALD_WS_AUTH_TIMEOUT', 'HERALD_DELIVERY_TIMEOUT', 'HERALD_RETENTION_TRIM_INTERVAL']) {
    assert.throws(
      () => loadConfig({ env: { [env]: '2592000' }, cwd: dir() }),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`(env ${env})`) && /3600/.test(e.message),
      env,
    );
    assert.doesNotThrow(() => loadConfig({ env: { [env]: '3600' }, cwd: dir() }), env);
  }
});

it('names the HERALD_ variables that are no setting, with the setting each is nearest to', () => {
  const env = {
    HERALD_LIMITS_BODY_BYTEZ: '10',
    HERALD_STORE: 'postgres://x',
    HERALD_PORT: '1',
    HERALD_URL: 'http://x',
    HERALD_TEST_POSTGRES_URL: 'postgres://x',
    HERALD_NOTHING_LIKE_IT: '1',
    PATH: '/bin',
  };
  assert.deepEqual(unknownEnvNames(env), [
    { name: 'HERALD_LIMITS_BODY_BYTEZ', nearest: 'HERALD_LIMITS_BODY_BYTES' },
    { name: 'HERALD_NOTHING_LIKE_IT', nearest: undefined },
    { name: 'HERALD_STORE', nearest: 'HERALD_STORE_URL' },
  ]);
});

it('refuses a default above its own bound: a portal session past maxSessionTtl, a cooldown past maxCooldown', () => {
  assert.throws(
    () => loadConfig({ env: { HERALD_PORTAL_SESSION_TTL: '7200', HERALD_PORTAL_MAX_SESSION_TTL: '3600' }, cwd: dir() }),
    (e: unknown) => e instanceof ConfigError && /portal\.sessionTtl \(env HERALD_PORTAL_SESSION_TTL\): at most portal\.maxSessionTtl \(3600\)/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ env: { HERALD_DELIVERY_CIRCUIT_BREAKER_COOLDOWN: '600' }, cwd: dir() }),
    (e: unknown) => e instanceof ConfigError && /delivery\.circuitBreaker\.cooldown .*at most delivery\.circuitBreaker\.maxCooldown \(300\)/.test(e.message),
  );
  assert.equal(loadConfig({ env: { HERALD_PORTAL_SESSION_TTL: '3600', HERALD_PORTAL_MAX_SESSION_TTL: '3600' }, cwd: dir() }).portal.sessionTtl, 3600);
});

it('refuses a metrics.port that is the API port on the same host', () => {
  assert.throws(
    () => loadConfig({ env: { HERALD_METRICS_PORT: '7700' }, cwd: dir() }),
    (e: unknown) => e instanceof ConfigError && /metrics\.port \(env HERALD_METRICS_PORT\): a port of its own/.test(e.message),
  );
  assert.equal(loadConfig({ env: { HERALD_METRICS_PORT: '7700', HERALD_METRICS_HOST: '127.0.0.2' }, cwd: dir() }).metrics.port, 7700);
});

it('points an invalid value at where it came from: a flag, the config file or the environment', () => {
  assert.throws(() => loadConfig({ env: {}, cwd: dir(), flags: { logLevel: 'loud' } }), /logLevel \(from a command-line flag\): Expected one of/);
  // A flag wins over the environment, so the flag is what to change.
  assert.throws(() => loadConfig({ env: { HERALD_LOG_LEVEL: 'info' }, cwd: dir(), flags: { logLevel: 'loud' } }), /logLevel \(from a command-line flag\)/);
  const cwd = dir();
  writeFileSync(join(cwd, 'herald.json'), JSON.stringify({ limits: { bodyBytes: -1 } }));
  assert.throws(() => loadConfig({ env: {}, cwd }), new RegExp(`limits\\.bodyBytes \\(in ${join(cwd, 'herald.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
  assert.throws(() => loadConfig({ env: { HERALD_LIMITS_BODY_BYTES: '-2' }, cwd }), /limits\.bodyBytes \(env HERALD_LIMITS_BODY_BYTES\)/);
  const file = join(cwd, 'herald.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // An empty variable is unset, so the file's value is the one to change.
  assert.throws(() => loadConfig({ env: { HERALD_LIMITS_BODY_BYTES: '' }, cwd }), new RegExp(`limits\\.bodyBytes \\(in ${file}\\)`));
  // A value in a list of objects, which no variable can set, is pointed at the file too.
  writeFileSync(join(cwd, 'herald.json'), JSON.stringify({ retention: { rules: [{ channels: ['a:*'], maxEvents: -1 }] } }));
  assert.throws(() => loadConfig({ env: {}, cwd }), new RegExp(`retention\\.rules\\.0\\.maxEvents \\(in ${file}\\)`));
});

it('names the allowed words when a setting takes one of a few', () => {
  assert.throws(
    () => loadConfig({ env: { HERALD_LOG_LEVEL: 'loud' }, cwd: dir() }),
    (e: unknown) => e instanceof ConfigError && /logLevel \(env HERALD_LOG_LEVEL\): Expected one of fatal, error, warn, info, debug, trace, silent, got "loud"/.test(e.message),
  );
  assert.throws(() => loadConfig({ env: { HERALD_STORE_SYNCHRONOUS: 'off' }, cwd: dir() }), /Expected one of full, normal, got "off"/);
});

it('runs one WAL sync at a time unless store.syncsInFlight says 2 or 3', () => {
  assert.equal(loadConfig({ env: {}, cwd: dir() }).store.syncsInFlight, 1);
  assert.equal(loadConfig({ env: { HERALD_STORE_SYNCS_IN_FLIGHT: '3' }, cwd: dir() }).store.syncsInFlight, 3);
  // libuv's thread pool has 4 threads: a fourth sync would leave none for other file and DNS work.
  assert.throws(() => loadConfig({ env: { HERALD_STORE_SYNCS_IN_FLIGHT: '4' }, cwd: dir() }), /store\.syncsInFlight \(env HERALD_STORE_SYNCS_IN_FLIGHT\)/);
  assert.throws(() => loadConfig({ env: { HERALD_STORE_SYNCS_IN_FLIGHT: '0' }, cwd: dir() }), ConfigError);
});

it('keeps the event store on the event loop unless store.appendThread says otherwise', () => {
  assert.equal(loadConfig({ env: {}, cwd: dir() }).store.appendThread, false);
  assert.equal(loadConfig({ env: { HERALD_STORE_APPEND_THREAD: 'true' }, cwd: dir() }).store.appendThread, true);
  assert.throws(() => loadConfig({ env: { HERALD_STORE_APPEND_THREAD: 'yes please' }, cwd: dir() }), /store\.appendThread/);
});

it('refuses an ingest.tolerance a replay could outlast its dedupe id within', () => {
  // Dedupe ids live for the longer of retention.maxAge and ingest.dedupeWindow (600 s here): at most 300 s.
  assert.throws(
    () => loadConfig({ env: { HERALD_INGEST_DEDUPE_WINDOW: '600', HERALD_RETENTION_MAX_AGE: '60', HERALD_INGEST_TOLERANCE: '301' }, cwd: dir() }),
    (e: unknown) => e instanceof ConfigError && /ingest\.tolerance \(env HERALD_INGEST_TOLERANCE\): at most 300 s/.test(e.message),
  );
  assert.equal(loadConfig({ env: { HERALD_INGEST_DEDUPE_WINDOW: '600', HERALD_RETENTION_MAX_AGE: '60', HERALD_INGEST_TOLERANCE: '300' }, cwd: dir() }).ingest.tolerance, 300);
});

it('refuses a limits.parkedPollBytes below what one poll of limits.channelsPerRequest channels with the largest headers is counted as: it could never wait', () => {
  // 100 channels: 6 KiB + 100 × 128 B, and Node's 16 KiB of headers past the first KiB: 18,944 + 15,360 = 34,304.
  assert.throws(
    () => loadConfig({ env: { HERALD_LIMITS_PARKED_POLL_BYTES: '34303' }, cwd: dir() }),
    (e: unknown) =>
      e instanceof ConfigError &&
      /limits\.parkedPollBytes \(env HERALD_LIMITS_PARKED_POLL_BYTES\): at least 34304, what one poll of limits\.channelsPerRequest \(100\) channels with 16384 bytes of headers/.test(e.message),
  );
  assert.equal(loadConfig({ env: { HERALD_LIMITS_PARKED_POLL_BYTES: '34304' }, cwd: dir() }).limits.parkedPollBytes, 34_304);
  assert.equal(loadConfig({ env: { HERALD_LIMITS_PARKED_POLL_BYTES: '22784', HERALD_LIMITS_CHANNELS_PER_REQUEST: '10' }, cwd: dir() }).limits.parkedPollBytes, 22_784);
  assert.throws(() => loadConfig({ env: { HERALD_LIMITS_PARKED_POLL_BYTES: '22783', HERALD_LIMITS_CHANNELS_PER_REQUEST: '10' }, cwd: dir() }), ConfigError);
  assert.equal(loadConfig({ cwd: dir() }).limits.parkedPollBytes, 256 * 1024 * 1024);
});

it('lets the default ingest.tolerance give way to a short dedupe lifetime', () => {
  const config = loadConfig({ env: { HERALD_INGEST_DEDUPE_WINDOW: '60', HERALD_RETENTION_MAX_AGE: '60' }, cwd: dir() });
  assert.equal(config.ingest.tolerance, 30);
  assert.equal(loadConfig({ env: { HERALD_INGEST_DEDUPE_WINDOW: '1', HERALD_RETENTION_MAX_AGE: '1' }, cwd: dir() }).ingest.tolerance, 0.5);
});

it('refuses an allowPrivateNetworks entry that is no CIDR, naming the setting and where it came from', () => {
  const cwd = dir();
  assert.throws(
    () => loadConfig({ cwd, env: { HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS: '10.0.0.0/8,notacidr' } }),
    (e: Error) => e instanceof ConfigError && /delivery\.allowPrivateNetworks\.1 \(env HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS\): .*got "notacidr"/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ cwd, env: { HERALD_PORTAL_ALLOW_PRIVATE_NETWORKS: '10.0.0.0/33' } }),
    (e: Error) => e instanceof ConfigError && /portal\.allowPrivateNetworks\.0 /.test(e.message),
  );
  assert.deepEqual(loadConfig({ cwd, env: { HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8,::1,fd00::/8' } }).delivery.allowPrivateNetworks, ['127.0.0.0/8', '::1', 'fd00::/8']);
});

it('refuses a bus.url of another scheme at load, as it does a store.url', () => {
  const cwd = dir();
  assert.throws(() => loadConfig({ cwd, env: { HERALD_BUS_URL: 'http://cache:6379' } }), (e: Error) => e instanceof ConfigError && /bus\.url \(env HERALD_BUS_URL\)/.test(e.message));
  for (const url of ['redis://h:6379', 'rediss://h', 'redis+cluster://a:1,b:2', 'rediss+sentinel://a:1/m', 'postgres://h/db', 'postgresql://h/db']) {
    assert.equal(loadConfig({ cwd, env: { HERALD_BUS_URL: url } }).bus.url, url);
  }
});

it('never echoes a secret in a configuration error: the admin key, the token secret, a URL password', () => {
  const cwd = dir();
  const message = (env: NodeJS.ProcessEnv) => {
    try {
      loadConfig({ cwd, env });
    } catch (error) {
      return (error as Error).message;
    }
    assert.fail('expected a ConfigError');
  };
  assert.doesNotMatch(message({ HERALD_ADMIN_KEY: 'short-s3cret' }), /s3cret/);
  assert.match(message({ HERALD_ADMIN_KEY: 'short-s3cret' }), /adminKey \(env HERALD_ADMIN_KEY\): .*got a value of 12 characters/);
  assert.doesNotMatch(message({ HERALD_TOKEN_SECRET: 'short-s3cret' }), /s3cret/);
  assert.match(message({ HERALD_STORE_URL: 'mysql://herald:s3cret@db/herald' }), /got "mysql:\/\/herald:\*\*\*@db\/herald"/);
  assert.doesNotMatch(message({ HERALD_BUS_URL: 'http://:s3cret@cache:6379' }), /s3cret/);
  // A scheme may hold digits, `-` and `.` (RFC 3986 3.1): `redis-cluster://` is a likely slip for `redis+cluster://`.
  assert.match(message({ HERALD_BUS_URL: 'redis-cluster://default:s3cret@a:1,b:2' }), /got "redis-cluster:\/\/default:\*\*\*@a:1,b:2"/);
  assert.doesNotMatch(message({ HERALD_STORE_URL: 'pg2.x://u:s3cret@db/herald' }), /s3cret/);
});

it('takes a list of objects (retention.rules) from the environment as JSON, and refuses text that is not, naming the variable', () => {
  const cwd = dir();
  const rules = [{ channels: ['audit:*'], maxAge: 2_592_000 }, { channels: ['tmp:*'], maxEvents: 10 }];
  assert.deepEqual(loadConfig({ cwd, env: { HERALD_RETENTION_RULES: JSON.stringify(rules) } }).retention.rules, rules);
  assert.throws(
    () => loadConfig({ cwd, env: { HERALD_RETENTION_RULES: 'audit:*=30d' } }),
    (e: Error) => e instanceof ConfigError && /retention\.rules \(env HERALD_RETENTION_RULES\)/.test(e.message),
  );
  // A field of a rule given there names that variable: there is no HERALD_RETENTION_RULES_MAX_EVENTS.
  assert.throws(
    () => loadConfig({ cwd, env: { HERALD_RETENTION_RULES: '[{"channels":["a:*"],"maxEvents":"x"}]' } }),
    (e: Error) => e instanceof ConfigError && /retention\.rules\.0\.maxEvents \(env HERALD_RETENTION_RULES\): /.test(e.message),
  );
  // It wins over the file, and the error says so.
  writeFileSync(join(cwd, 'herald.json'), JSON.stringify({ retention: { rules: [{ channels: ['a:*'], maxEvents: 5 }] } }));
  assert.throws(
    () => loadConfig({ cwd, env: { HERALD_RETENTION_RULES: '[{"channels":["a:*"],"maxEvents":-1}]' } }),
    (e: Error) => e instanceof ConfigError && /retention\.rules\.0\.maxEvents \(env HERALD_RETENTION_RULES\): /.test(e.message),
  );
  writeFileSync(join(cwd, 'herald.json'), JSON.stringify({ retention: { rules: [{ channels: ['a:*'], maxEvents: -1 }] } }));
  assert.throws(
    () => loadConfig({ cwd, env: {} }),
    (e: Error) => e instanceof ConfigError && /retention\.rules\.0\.maxEvents \(in [^)]*herald\.json\): /.test(e.message),
  );
});

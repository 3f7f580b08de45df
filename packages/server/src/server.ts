import pino, { type Logger } from 'pino';
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { HeraldConfig } from './config/schema.js';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { openSqliteStorage } from './store/sqlite/open.js';
import { openPostgresStorage } from './store/postgres/open.js';
import { disabledByHerald, type Storage } from './store/types.js';
import { createBus } from './bus/create.js';
import type { Bus, BusState } from './bus/types.js';
import { LeaseKeeper } from './cluster/leases.js';
import { NodeRegistry } from './cluster/nodes.js';
import { EndpointLeases } from './cluster/endpoint-leases.js';
import { EventLog } from './log/event-log.js';
import { RetentionTrimmer } from './log/retention.js';
import { Authenticator } from './auth/authenticator.js';
import { AccessPolicy } from './auth/principal.js';
import { LongPollHub } from './transports/poll/long-poll.js';
import { SseHub } from './transports/sse/hub.js';
import { ReplayBudget } from './transports/replay-budget.js';
import { isWebSocketUpgrade, WsGateway } from './transports/ws/gateway.js';
import { serveAsHttp } from './http/upgrade-fallback.js';
import { buildApp } from './http/app.js';
import { capConnections, connectionCap, openFilesLimit } from './http/connection-cap.js';
import { DeliveryService } from './delivery/service.js';
import { LookupGate, threadPoolSize } from './delivery/lookup-gate.js';
import { VERSION } from './version.js';
import { ConnectionWatch } from './auth/liveness.js';
import type { ClusterBus } from './bus/cluster-bus.js';
import { collectProcessMetrics, sources as metricsSources, startMetricsListener, type MetricsSource } from './metrics/index.js';
import { StartupError, withGeneratedAdminKey } from './startup-error.js';
import { HeraldError } from '@herald/protocol';
import { redact } from './util/redact-url.js';
import { SignalBus } from './presence/signal-bus.js';
import { PresenceService } from './presence/service.js';
import { FailureStreak } from './util/failure-streak.js';

/** How often open connections' credentials are re-checked; with the key cache's second, revocation ends them within ~2 s. */
const CREDENTIAL_SWEEP_MS = 1000;
/** How often a node reads the admin key's hash again, for `herald admin-key reset` (see Authenticator.refreshAdminKey). */
export const ADMIN_KEY_REFRESH_MS = 2000;
/** A lease not renewed for this long passes to another node: how fast a dead node's work is taken over. */
const LEASE_TTL_MS = 5000;

function openStorage(config: HeraldConfig, logger: Logger, nodeId: string): Promise<Storage> {
  if (config.store.appendThread && config.store.url) logger.warn('store.appendThread applies to SQLite only: it changes nothing on PostgreSQL');
  if (config.store.url) {
    const url = config.store.url;
    // A store refusing to open is the operator's to fix (down, a wrong database name or password): say what PostgreSQL said.
    return openPostgresStorage({ url, queryTimeoutMs: config.store.queryTimeout * 1000, applicationName: `herald:${nodeId}` }).catch((error: unknown) => {
      if (!(error instanceof HeraldError && error.code === 'store_unavailable')) throw error;
      throw new StartupError(`PostgreSQL at ${redact(url)} cannot be used: ${(error.cause as Error | undefined)?.message ?? error.message}`);
    });
  }
  return openSqliteStorage({
    dataDir: config.dataDir,
    synchronous: config.store.synchronous,
    channelCache: config.store.channelCache,
    syncsInFlight: config.store.syncsInFlight,
    appendThread: config.store.appendThread,
    onCheckpointFailure: (err, givenUp) =>
      givenUp
        ? logger.warn({ err }, 'checkpoint thread given up: commits over many channels checkpoint the WAL themselves from now on')
        : logger.warn({ err }, 'background WAL checkpoint failed; the next wide commit tries again'),
    // As after a failed sync: /readyz answers 503 from now on, and every append is refused until a restart.
    onAppendThreadFailure: (err) => logger.fatal({ err }, "the event store's thread stopped: every append and read is refused until Herald is restarted"),
  });
}

/** An address a server binds, and the settings that choose it, for the line that names them. */
interface Bind {
  host: string;
  port: number;
  portSetting: string;
  hostSetting: string;
}

const apiBind = (config: HeraldConfig): Bind => ({ host: config.host, port: config.port, portSetting: '--port or HERALD_PORT', hostSetting: '--host or HERALD_HOST' });

/** The metrics listener's own: a clash of its port was reported as the API port's. */
const metricsBind = (config: HeraldConfig): Bind => ({
  host: config.metrics.host ?? config.host,
  port: config.metrics.port,
  portSetting: 'metrics.port or HERALD_METRICS_PORT',
  hostSetting: 'metrics.host or HERALD_METRICS_HOST',
});

/** `http://host:port`, with an IPv6 host in brackets (RFC 3986), as the URLs it names are printed and returned. */
const httpOrigin = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

/** A port in use or not allowed is the operator's to fix: say so in one line. */
function listenError(error: unknown, bind: Bind): unknown {
  const code = (error as { code?: unknown }).code;
  if (code === 'EADDRINUSE') {
    return new StartupError(`port ${bind.port} is in use${bind.host === '127.0.0.1' ? '' : ` on ${bind.host}`}: pick another with ${bind.portSetting}`);
  }
  if (code === 'EACCES') return new StartupError(`port ${bind.port} needs privileges this user lacks: pick one above 1023 with ${bind.portSetting}`);
  if (code === 'EADDRNOTAVAIL') return new StartupError(`cannot bind ${bind.host}: no such address on this machine (${bind.hostSetting})`);
  // The host is a name that does not resolve (a typo, or a name only another machine knows).
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new StartupError(`cannot bind ${bind.host}: the name does not resolve to an address (${bind.hostSetting})`);
  return error;
}

export interface HeraldServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  app: FastifyInstance;
  storage: Storage;
  trimmer: RetentionTrimmer;
  longPoll: LongPollHub;
  sse: SseHub;
  ws: WsGateway;
  delivery: DeliveryService;
  auth: Authenticator;
  bus: Bus;
  presence: PresenceService;
  nodeId: string;
  nodes: NodeRegistry;
  /** Set only on the start that generated the admin key. */
  generatedAdminKey?: string;
  /** `http://host:port/metrics` when `metrics.port` runs a listener of its own. */
  metricsUrl?: string;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Called for every route as Fastify registers it. */
  onRoute?: (route: RouteOptions) => void;
}

/** The setting that names the cluster (see `ClusterBusOptions.cluster`). */
const CLUSTER_ID_SETTING = 'cluster_id';

export async function startServer(config: HeraldConfig, options: StartOptions = {}): Promise<HeraldServer> {
  const nodeId = config.nodeId ?? `node-${randomBytes(4).toString('hex')}`;
  // Every line names its node: a cluster's logs, gathered in one place, say which node said what.
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'herald', nodeId } });
  const storage = await openStorage(config, logger, nodeId);
  if (config.bus.url && !config.store.url) {
    // A bus carries positions in a shared store: with SQLite, this node's events are in no store the others read.
    logger.warn('bus.url without store.url: this node keeps its events in its own SQLite store, which no other node on the bus reads; a cluster needs --store postgres://…');
  }
  // A new store is upgraded from 0: only an existing one's upgrade is news, as it may have rewritten big tables.
  if (storage.upgraded && storage.upgraded.from > 0) logger.info(storage.upgraded, `store schema upgraded from ${storage.upgraded.from} to ${storage.upgraded.to}`);
  let bus: Bus;
  try {
    bus = await createBus(config.bus.url, {
      store: storage.events,
      onError: (err) => logger.warn({ err }, 'bus error'),
      wholeLogChannels: config.bus.channelCache,
      // Made by the first node on the store, so every node of the cluster has it and another cluster does not.
      cluster: config.bus.url ? await storage.settings.setIfAbsent(CLUSTER_ID_SETTING, randomBytes(8).toString('hex')) : undefined,
    });
  } catch (error) {
    await storage.close();
    throw error;
  }
  let signals: SignalBus;
  try {
    signals = await SignalBus.create(config.bus.url, (err) => logger.warn({ err }, 'signal bus error'));
  } catch (error) {
    await bus.close();
    await storage.close();
    throw error;
  }
  const busState = (state: BusState) =>
    state === 'down' ? logger.error('bus down: serving subscribers from the store until it returns') : logger.info('bus up');
  bus.onStateChange(busState);
  // A bus that could not connect at start (a mistyped --bus, Redis not up yet) is down before anyone listens: said once.
  if (bus.state === 'down') busState('down');
  const log = new EventLog(storage.events, bus, (err) => logger.error({ err }, 'bus publish failed'));
  let authSetup: Awaited<ReturnType<typeof Authenticator.create>>;
  try {
    authSetup = await Authenticator.create(config, storage.keys, storage.settings, (message) => logger.warn(message));
  } catch (error) {
    await signals.close();
    await bus.close();
    await storage.close();
    throw error;
  }
  const { authenticator, generatedAdminKey } = authSetup;
  const longPoll = new LongPollHub(bus, config.limits.parkedPollBytes);
  const leases = new LeaseKeeper(storage.cluster, nodeId, LEASE_TTL_MS);
  const trimmer = new RetentionTrimmer(storage.events, config, (err) => logger.error({ err }, 'trim failed'), leases);
  const sse = new SseHub(config.sse.heartbeat);
  const replayBudget = new ReplayBudget(config.limits.replayBytes);
  const nodes = new NodeRegistry(
    storage.cluster,
    nodeId,
    VERSION,
    // Called from start() on, after the gateway below exists.
    (): Record<string, number> => ({ ws: gateway.size, sse: sse.size, long_poll: longPoll.waiting }),
    new FailureStreak(logger, 'node heartbeat'),
    () => bus.state,
    (view) => bus.observePeers(view),
    config.adminKey ? 'config' : 'store',
  );
  // On SQLite this process is the only node: it sends every endpoint's deliveries, no leases needed.
  const ownership = config.store.url ? new EndpointLeases(leases, nodes, logger) : { owns: async () => true };
  // Endpoint host lookups share libuv's thread pool with the WAL's syncs: they get what the syncs leave, less one thread.
  const lookups = new LookupGate(Math.max(1, threadPoolSize() - config.store.syncsInFlight - 1));
  const delivery = new DeliveryService(
    config.delivery,
    storage.deliveries,
    storage.settings,
    log,
    logger,
    VERSION,
    leases,
    ownership,
    config.portal.allowPrivateNetworks,
    lookups,
  );
  const access = new AccessPolicy(config.channels.public);
  const presence = new PresenceService({ config, node: nodeId, bus: signals, access, onError: (err) => logger.warn({ err }, 'presence error') });
  const watch = new ConnectionWatch(authenticator.liveness, CREDENTIAL_SWEEP_MS, new FailureStreak(logger, 'credential sweep', 'error'));
  const adminKeyReads = new FailureStreak(logger, 'reading the admin key', 'warn');
  const adminKeyTimer = setInterval(() => {
    authenticator.refreshAdminKey().then((outcome) => {
      adminKeyReads.succeeded();
      if (outcome === 'taken') logger.warn('admin key replaced from the store (herald admin-key reset): the one before no longer works');
      if (outcome === 'kept') {
        logger.warn(
          'the stored admin key was replaced (herald admin-key reset, or a node started with another HERALD_ADMIN_KEY), but this node ' +
            'takes its admin key from HERALD_ADMIN_KEY (or adminKey in its config) and still accepts that one: change the setting and restart the node to replace it',
        );
      }
    }, adminKeyReads.onError);
  }, ADMIN_KEY_REFRESH_MS);
  adminKeyTimer.unref();
  const ctx = {
    config,
    watch,
    nodes,
    log,
    keys: storage.keys,
    sources: storage.sources,
    auth: authenticator,
    access,
    presence,
    longPoll,
    sse,
    replayBudget,
    delivery,
    ready: () => storage.events.ping(),
    busState: () => bus.state,
  };
  const app = buildApp(ctx, logger, options.onRoute ? { onRoute: options.onRoute } : {});
  const gateway: WsGateway = new WsGateway(app.server, ctx, app.log);
  // Every connection, and how many requests each has in flight. Node's close() ends only the connections it counts
  // as idle; one that never sent a complete request (an aborted fetch's, a bare TCP connect) is not, and would hold
  // the close until its headers timeout (about a minute).
  const connections = new Set<Socket>();
  const inFlight = new Map<Socket, number>();
  let stopping = false;
  // One listener function for every socket and response, not a closure (and a once-wrapper) each: an idle
  // stream or WebSocket holds them for as long as it is open. Node emits `close` once.
  function socketClosed(this: Socket): void {
    connections.delete(this);
    inFlight.delete(this);
  }
  function answered(this: ServerResponse): void {
    const socket = this.req.socket;
    const left = (inFlight.get(socket) ?? 1) - 1;
    if (left > 0) return void inFlight.set(socket, left);
    inFlight.delete(socket);
    // A stopping server keeps no connection alive after its last answer.
    if (stopping) socket.end();
  }
  capConnections(app.server, connectionCap(config.limits.connections, openFilesLimit()));
  app.server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.on('close', socketClosed);
  });
  // An upgraded socket belongs to the WebSocket gateway, which ends it with 1001 itself: it leaves the count, and
  // takes no listener of ours with it (a second `close` listener would turn the socket's one into an array).
  app.server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    connections.delete(socket);
    socket.removeListener('close', socketClosed);
    // Not a WebSocket handshake (the gateway leaves it alone): served as an ordinary request, on a connection counted
    // again by the `connection` listener above. Last among the `upgrade` listeners, so none sees it after.
    if (!isWebSocketUpgrade(request)) serveAsHttp(app.server, request, socket, head);
  });
  // Node reads requests pipelined on a connection before their answers are written, and stops only once unsent
  // answers fill the socket's buffer: parked long polls write nothing, so one connection could park any number.
  // Past limits.pipelinedRequests unanswered requests the connection is dropped.
  const maxInFlight = config.limits.pipelinedRequests;
  app.server.on('request', (request, response) => {
    const socket = request.socket;
    const count = (inFlight.get(socket) ?? 0) + 1;
    inFlight.set(socket, count);
    response.on('close', answered);
    if (count > maxInFlight) {
      logger.warn({ inFlight: count }, 'connection pipelined past limits.pipelinedRequests: dropping it');
      socket.destroy();
    }
  });
  // Open streams would hold the close forever and parked polls for a minute: end them first.
  app.addHook('preClose', async () => {
    longPoll.releaseAll();
    sse.closeAll('shutdown');
    await gateway.close();
    // Then every connection with nothing in flight goes at once; the others end after their answer.
    stopping = true;
    for (const socket of connections) if (!inFlight.has(socket)) socket.destroy();
  });
  // What /metrics reads at scrape time; the counters themselves are recorded where things happen.
  const metricsSource: MetricsSource = {
    store: config.store.url ? 'postgres' : 'sqlite',
    connections: () => ({ ws: gateway.size, sse: sse.size, long_poll: longPoll.waiting }),
    busUp: () => bus.state === 'up',
    ...('messagesSent' in bus ? { busMessages: () => ({ sent: (bus as ClusterBus).messagesSent, received: (bus as ClusterBus).messagesReceived }) } : {}),
    deliveryState: async () => ({
      ...((await storage.deliveries.statusCounts?.()) ?? { pending: 0, failed: 0 }),
      endpointsDisabled: (await storage.deliveries.listEndpoints()).filter(disabledByHerald).length,
    }),
    circuitsOpen: () => delivery.worker.circuitsOpen(),
    replayBytes: () => replayBudget.held,
  };
  metricsSources.add(metricsSource);
  collectProcessMetrics();
  let metricsListener: { port: number; close(): Promise<void> } | undefined;

  const shutdown = async () => {
    metricsSources.delete(metricsSource);
    await metricsListener?.close();
    await trimmer.stop();
    await app.close();
    watch.stop();
    clearInterval(adminKeyTimer);
    await delivery.stop();
    await presence.stop();
    await nodes.stop();
    await leases.releaseAll();
    await bus.close();
    await storage.close();
  };
  // Every start-up step runs before listen(): a server that cannot serve never answers /readyz 200.
  // Which listener a failure to bind was: the line names its own settings.
  let bind = apiBind(config);
  let metricsUrl: string | undefined;
  try {
    await nodes.start(config.store.url !== undefined ? { unique: true } : { alone: true });
    presence.start();
    trimmer.start();
    await delivery.start();
    await app.listen({ host: config.host, port: config.port });
    if (config.metrics.enabled && config.metrics.port > 0) {
      bind = metricsBind(config);
      metricsListener = await startMetricsListener(bind.host, bind.port);
      metricsUrl = `${httpOrigin(bind.host, metricsListener.port)}/metrics`;
      logger.info({ url: metricsUrl }, 'metrics listening');
    }
  } catch (error) {
    await shutdown().catch((err: unknown) => logger.warn({ err }, 'cleanup after a failed start failed'));
    throw withGeneratedAdminKey(listenError(error, bind), generatedAdminKey);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = httpOrigin(config.host, port);

  let closing: Promise<void> | undefined;
  const server: HeraldServer = {
    url,
    app,
    storage,
    trimmer,
    longPoll,
    sse,
    ws: gateway,
    delivery,
    auth: authenticator,
    bus,
    presence,
    nodeId,
    nodes,
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
  if (generatedAdminKey) server.generatedAdminKey = generatedAdminKey;
  if (metricsUrl) server.metricsUrl = metricsUrl;
  return server;
}

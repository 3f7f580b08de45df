import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { HeraldConfig } from './config/schema.js';
import { randomBytes } from 'node:crypto';
import { openSqliteStorage } from './store/sqlite/open.js';
import { openPostgresStorage } from './store/postgres/open.js';
import type { Storage } from './store/types.js';
import { createBus } from './bus/create.js';
import type { Bus } from './bus/types.js';
import { LeaseKeeper } from './cluster/leases.js';
import { NodeRegistry } from './cluster/nodes.js';
import { EndpointLeases } from './cluster/endpoint-leases.js';
import { EventLog } from './log/event-log.js';
import { RetentionTrimmer } from './log/retention.js';
import { Authenticator } from './auth/authenticator.js';
import { AccessPolicy } from './auth/principal.js';
import { LongPollHub } from './transports/poll/long-poll.js';
import { SseHub } from './transports/sse/hub.js';
import { WsGateway } from './transports/ws/gateway.js';
import { buildApp } from './http/app.js';
import { DeliveryService } from './delivery/service.js';
import { VERSION } from './version.js';
import { ConnectionWatch } from './auth/liveness.js';

/** How often open connections' credentials are re-checked; with the key cache's second, revocation ends them within ~2 s. */
const CREDENTIAL_SWEEP_MS = 1000;
/** A lease not renewed for this long passes to another node: how fast a dead node's work is taken over. */
const LEASE_TTL_MS = 5000;

function openStorage(config: HeraldConfig): Promise<Storage> {
  if (config.store.url) return openPostgresStorage({ url: config.store.url });
  return openSqliteStorage({ dataDir: config.dataDir, synchronous: config.store.synchronous });
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
  nodeId: string;
  nodes: NodeRegistry;
  /** Set only on the start that generated the admin key. */
  generatedAdminKey?: string;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

export async function startServer(config: HeraldConfig, options: StartOptions = {}): Promise<HeraldServer> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'herald' } });
  const nodeId = config.nodeId ?? `node-${randomBytes(4).toString('hex')}`;
  const storage = await openStorage(config);
  let bus: Bus;
  try {
    bus = await createBus(config.bus.url, {
      store: storage.events,
      onError: (err) => logger.warn({ err }, 'bus error'),
    });
  } catch (error) {
    await storage.close();
    throw error;
  }
  bus.onStateChange((state) =>
    state === 'down' ? logger.error('bus down: serving subscribers from the store until it returns') : logger.info('bus up'),
  );
  const log = new EventLog(storage.events, bus, (err) => logger.error({ err }, 'bus publish failed'));
  const { authenticator, generatedAdminKey } = await Authenticator.create(config, storage.keys, storage.settings);
  const longPoll = new LongPollHub(bus);
  const leases = new LeaseKeeper(storage.cluster, nodeId, LEASE_TTL_MS);
  const trimmer = new RetentionTrimmer(storage.events, config, (err) => logger.error({ err }, 'trim failed'), leases);
  const sse = new SseHub(config.sse.heartbeat);
  const nodes = new NodeRegistry(
    storage.cluster,
    nodeId,
    VERSION,
    // Called from start() on, after the gateway below exists.
    (): Record<string, number> => ({ ws: gateway.size, sse: sse.size, long_poll: longPoll.waiting }),
    (err) => logger.warn({ err }, 'node heartbeat failed'),
  );
  // On SQLite this process is the only node: it sends every endpoint's deliveries, no leases needed.
  const ownership = config.store.url ? new EndpointLeases(leases, nodes) : { owns: async () => true };
  const delivery = new DeliveryService(config.delivery, storage.deliveries, log, logger, VERSION, leases, ownership);
  const watch = new ConnectionWatch(authenticator.liveness, CREDENTIAL_SWEEP_MS, (err) => logger.error({ err }, 'credential sweep failed'));
  const ctx = {
    config,
    watch,
    nodes,
    log,
    keys: storage.keys,
    sources: storage.sources,
    auth: authenticator,
    access: new AccessPolicy(config.channels.public),
    longPoll,
    sse,
    delivery,
    ready: () => storage.events.ping(),
    busState: () => bus.state,
  };
  const app = buildApp(ctx, logger);
  const gateway: WsGateway = new WsGateway(app.server, ctx, app.log);
  // Open streams would hold the close forever and parked polls for a minute: end them first.
  app.addHook('preClose', async () => {
    longPoll.releaseAll();
    sse.closeAll('shutdown');
    await gateway.close();
  });

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await bus.close();
    await storage.close();
    throw error;
  }
  await nodes.start();
  trimmer.start();
  await delivery.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;

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
    nodeId,
    nodes,
    close() {
      closing ??= (async () => {
        await trimmer.stop();
        await app.close();
        watch.stop();
        await delivery.stop();
        await nodes.stop();
        await leases.releaseAll();
        await bus.close();
        await storage.close();
      })();
      return closing;
    },
  };
  if (generatedAdminKey) server.generatedAdminKey = generatedAdminKey;
  return server;
}

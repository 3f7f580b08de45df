import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { HeraldConfig } from './config/schema.js';
import { openSqliteStorage } from './store/sqlite/open.js';
import type { Storage } from './store/types.js';
import { LocalBus } from './bus/local-bus.js';
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
  /** Set only on the start that generated the admin key. */
  generatedAdminKey?: string;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

export async function startServer(config: HeraldConfig, options: StartOptions = {}): Promise<HeraldServer> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'herald' } });
  const storage = await openSqliteStorage({ dataDir: config.dataDir, synchronous: config.store.synchronous });
  const bus = new LocalBus();
  const log = new EventLog(storage.events, bus, (err) => logger.error({ err }, 'bus publish failed'));
  const { authenticator, generatedAdminKey } = await Authenticator.create(config, storage.keys, storage.settings);
  const longPoll = new LongPollHub(bus);
  const trimmer = new RetentionTrimmer(storage.events, config, (err) => logger.error({ err }, 'trim failed'));
  const sse = new SseHub(config.sse.heartbeat);
  const delivery = new DeliveryService(config.delivery, storage.deliveries, log, logger, VERSION);
  const ctx = {
    config,
    log,
    keys: storage.keys,
    sources: storage.sources,
    auth: authenticator,
    access: new AccessPolicy(config.channels.public),
    longPoll,
    sse,
    delivery,
    ready: () => storage.events.ping(),
  };
  const app = buildApp(ctx, logger);
  const ws = new WsGateway(app.server, ctx, app.log);
  // Open streams would hold the close forever and parked polls for a minute: end them first.
  app.addHook('preClose', async () => {
    longPoll.releaseAll();
    sse.closeAll('shutdown');
    await ws.close();
  });

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await storage.close();
    throw error;
  }
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
    ws,
    delivery,
    close() {
      closing ??= (async () => {
        await trimmer.stop();
        await app.close();
        await delivery.stop();
        await bus.close();
        await storage.close();
      })();
      return closing;
    },
  };
  if (generatedAdminKey) server.generatedAdminKey = generatedAdminKey;
  return server;
}

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
import { buildApp } from './http/app.js';

export interface HeraldServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  app: FastifyInstance;
  storage: Storage;
  trimmer: RetentionTrimmer;
  longPoll: LongPollHub;
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
  const trimmer = new RetentionTrimmer(storage.events, config.retention, (err) => logger.error({ err }, 'trim failed'));
  const app = buildApp(
    {
      config,
      log,
      keys: storage.keys,
      auth: authenticator,
      access: new AccessPolicy(config.channels.public),
      longPoll,
      ready: () => storage.events.ping(),
    },
    logger,
  );
  // Parked long polls would hold the close for up to a minute; answer them now.
  app.addHook('preClose', async () => longPoll.releaseAll());

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await storage.close();
    throw error;
  }
  trimmer.start();
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
    close() {
      closing ??= (async () => {
        await trimmer.stop();
        await app.close();
        await bus.close();
        await storage.close();
      })();
      return closing;
    },
  };
  if (generatedAdminKey) server.generatedAdminKey = generatedAdminKey;
  return server;
}

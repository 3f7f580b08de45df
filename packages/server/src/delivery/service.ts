import type { FastifyBaseLogger } from 'fastify';
import type { HeraldConfig } from '../config/schema.js';
import type { EventLog } from '../log/event-log.js';
import type { DeliveryStore } from '../store/types.js';
import { Dispatcher } from './dispatcher.js';
import { UrlGuard } from './ssrf.js';
import { DeliveryWorker } from './worker.js';

/** Outbound webhooks: the dispatcher derives deliveries from the log, the worker sends them. */
export class DeliveryService {
  readonly guard: UrlGuard;
  readonly dispatcher: Dispatcher;
  readonly worker: DeliveryWorker;

  constructor(
    config: HeraldConfig['delivery'],
    readonly store: DeliveryStore,
    log: EventLog,
    logger: FastifyBaseLogger,
    version: string,
  ) {
    this.guard = new UrlGuard(config);
    this.worker = new DeliveryWorker(config, store, log, this.guard, logger, version);
    this.dispatcher = new Dispatcher(log, store, logger, () => this.worker.kick());
  }

  async start(): Promise<void> {
    await this.dispatcher.start();
    this.worker.start();
  }

  /** After the admin API changed an endpoint: match against the new set, apply the new limits. */
  async endpointChanged(id: string): Promise<void> {
    await this.dispatcher.reloadEndpoints();
    this.worker.endpointChanged(id);
  }

  async stop(): Promise<void> {
    await this.dispatcher.stop();
    await this.worker.stop();
  }
}

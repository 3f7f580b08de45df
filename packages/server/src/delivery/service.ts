import type { FastifyBaseLogger } from 'fastify';
import type { HeraldConfig } from '../config/schema.js';
import type { EventLog } from '../log/event-log.js';
import type { DeliveryStore, SettingsStore } from '../store/types.js';
import { SingletonRunner, type LeaseKeeper } from '../cluster/leases.js';
import { Dispatcher } from './dispatcher.js';
import { UrlGuard } from './ssrf.js';
import { LookupGate } from './lookup-gate.js';
import { DeliveryWorker, type EndpointOwnership } from './worker.js';

/**
 * Outbound webhooks: the dispatcher derives deliveries from the log, the
 * worker sends them. In a cluster one node at a time runs the dispatcher
 * (the `dispatcher` lease), and each endpoint's deliveries are sent by the
 * node holding that endpoint's lease, so its concurrency and rate limits
 * hold cluster-wide; a node that dies hands both over when its leases expire.
 */
export class DeliveryService {
  /** The SSRF check of the admin's endpoints (`delivery.allowPrivateNetworks`). */
  readonly guard: UrlGuard;
  /** A portal tenant's (`portal.allowPrivateNetworks` only), at registration and at each attempt alike. */
  readonly tenantGuard: UrlGuard;
  readonly worker: DeliveryWorker;
  private dispatcher: Dispatcher | undefined;
  private readonly runner: SingletonRunner;

  constructor(
    config: HeraldConfig['delivery'],
    readonly store: DeliveryStore,
    /** Where the dispatcher records which endpoints it has derived deliveries for (see Dispatcher). */
    private readonly settings: SettingsStore,
    private readonly log: EventLog,
    private readonly logger: FastifyBaseLogger,
    version: string,
    leases: LeaseKeeper,
    ownership: EndpointOwnership,
    /** CIDRs a tenant's endpoints may reach (`portal.allowPrivateNetworks`); the admin's list does not extend to them. */
    tenantPrivateNetworks: readonly string[] = [],
    /** Endpoint hosts are resolved through it, a few at a time (see LookupGate); portal tenants' through one slot of it. */
    lookups: LookupGate = new LookupGate(2),
  ) {
    this.guard = new UrlGuard({ ...config, resolve: lookups.resolve });
    this.tenantGuard = new UrlGuard({ allowPrivateNetworks: tenantPrivateNetworks, httpsOnly: config.httpsOnly, resolve: lookups.narrowed(1).resolve });
    this.worker = new DeliveryWorker(config, store, log, this.guard, logger, version, ownership, this.tenantGuard);
    this.runner = new SingletonRunner(
      leases,
      'dispatcher',
      {
        start: async () => {
          // A fresh dispatcher each time the lease is won: it starts from the durable cursors, never from stale memory.
          const dispatcher = new Dispatcher(this.log, this.store, this.logger, () => this.worker.kick(), this.settings, config.cursorCache);
          this.dispatcher = dispatcher;
          await dispatcher.start();
          // In a cluster, where the dispatcher runs (and when it moves after a node dies) is worth a line.
          this.logger.info('dispatcher lease taken: this node now turns events into deliveries');
        },
        stop: async () => {
          const dispatcher = this.dispatcher;
          this.dispatcher = undefined;
          await dispatcher?.stop();
          this.logger.info('dispatcher lease given up');
        },
      },
      (err) => logger.error({ err }, 'dispatcher lease transition failed'),
    );
  }

  async start(): Promise<void> {
    await this.runner.start();
    this.worker.start();
  }

  /** After the admin API changed an endpoint: match against the new set, apply the new limits. */
  async endpointChanged(id: string): Promise<void> {
    await this.dispatcher?.reloadEndpoints();
    this.worker.endpointChanged(id);
  }

  async stop(): Promise<void> {
    await this.runner.stop();
    await this.worker.stop();
  }
}

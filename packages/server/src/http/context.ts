import type { HeraldConfig } from '../config/schema.js';
import type { EventLog } from '../log/event-log.js';
import type { KeyStore, SourceStore } from '../store/types.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { AccessPolicy, Principal } from '../auth/principal.js';
import type { LongPollHub } from '../transports/poll/long-poll.js';
import type { SseHub } from '../transports/sse/hub.js';
import type { DeliveryService } from '../delivery/service.js';

/** What the HTTP routes need; built once in server.ts. */
export interface AppContext {
  config: HeraldConfig;
  log: EventLog;
  keys: KeyStore;
  sources: SourceStore;
  auth: Authenticator;
  access: AccessPolicy;
  longPoll: LongPollHub;
  sse: SseHub;
  delivery: DeliveryService;
  ready(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route is authenticated by the sender's webhook signature, not by a Herald credential. */
    signedByProvider?: boolean;
  }
  interface FastifyRequest {
    /** The authenticated caller; undefined when no credential was sent. */
    principal: Principal | undefined;
  }
}

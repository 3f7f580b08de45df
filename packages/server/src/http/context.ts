import type { HeraldConfig } from '../config/schema.js';
import type { EventLog } from '../log/event-log.js';
import type { KeyStore, SourceStore } from '../store/types.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { AccessPolicy, Principal } from '../auth/principal.js';
import type { LongPollHub } from '../transports/poll/long-poll.js';
import type { SseHub } from '../transports/sse/hub.js';
import type { ReplayBudget } from '../transports/replay-budget.js';
import type { DeliveryService } from '../delivery/service.js';
import type { ConnectionWatch } from '../auth/liveness.js';
import type { NodeRegistry } from '../cluster/nodes.js';
import type { BusState } from '../bus/types.js';
import type { PresenceService } from '../presence/service.js';

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
  /** Ends open streams and sockets whose credential expires or is revoked. */
  watch: ConnectionWatch;
  nodes: NodeRegistry;
  /** What the SSE and WebSocket replays on this node may hold together (`limits.replayBytes`). */
  replayBudget: ReplayBudget;
  /** Presence sets, ephemeral publishes and direct messages (src/presence). */
  presence: PresenceService;
  /** Resolves when the store answers; /readyz is 503 otherwise. */
  ready(): Promise<void>;
  /** `down` while the link to the other nodes is lost (subscribers are then served from the store). */
  busState(): BusState;
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

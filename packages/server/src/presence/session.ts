import { randomBytes } from 'node:crypto';
import type { PresenceMember } from '@herald/protocol';
import type { Principal } from '../auth/principal.js';
import type { FrameSink, PresenceService } from './service.js';
import { TokenBucket } from './rate-limit.js';

/** A connection's id in presence sets and as the target of direct messages: random, so it says nothing. */
export function newClientId(): string {
  return `cl_${randomBytes(12).toString('base64url')}`;
}

/**
 * What a WebSocket session has beyond its log feeds: its `client` id, its
 * presence memberships and ephemeral listeners per subscribed channel, and its
 * own rate bucket for ephemeral publishes and direct messages. The session
 * calls in at subscribe, unsubscribe and close.
 */
export class SessionSignals {
  readonly client = newClientId();
  readonly gate: TokenBucket;
  /** Per subscribed channel: how to undo what `attach` did. */
  private readonly attached = new Map<string, () => void>();

  constructor(
    private readonly presence: PresenceService,
    private readonly sink: FrameSink,
  ) {
    this.gate = new TokenBucket(presence.ephemeralPerSecond);
  }

  /**
   * The subscription to `channel` is in place: follow its ephemeral publishes and, when asked, join its
   * presence set. Returns what the `subscribed` frame carries about presence.
   */
  attach(principal: Principal | undefined, channel: string, presence: { info?: unknown } | undefined): { client: string; members: PresenceMember[] } | undefined {
    this.detach(channel);
    const stopListening = this.presence.listen(channel, (frames) => this.sink(frames.websocket));
    if (!presence) {
      this.attached.set(channel, stopListening);
      return undefined;
    }
    let members: PresenceMember[];
    try {
      members = this.presence.join(principal, channel, this.client, presence.info, this.sink);
    } catch (error) {
      stopListening();
      throw error;
    }
    this.attached.set(channel, () => {
      stopListening();
      this.presence.leave(channel, this.client);
    });
    return { client: this.client, members };
  }

  detach(channel: string): void {
    const undo = this.attached.get(channel);
    if (!undo) return;
    this.attached.delete(channel);
    undo();
  }

  detachAll(): void {
    for (const channel of [...this.attached.keys()]) this.detach(channel);
  }
}

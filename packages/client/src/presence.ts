import type { DirectMessage, PresenceMember } from '@herald/protocol';
import { Emitter } from './emitter.js';
import type { HeraldClientError } from './client.js';

export interface PresenceOptions {
  /** What other members see about this connection: any JSON of at most 1 KiB. */
  info?: unknown;
}

type PresenceEvents = {
  /** Another connection joined the set. */
  join: [PresenceMember];
  /** Another connection left it (unsubscribed, closed, or its node died). */
  leave: [PresenceMember];
  /** The whole set, after each (re)join: on every new connection the client id and the list start over. */
  members: [PresenceMember[]];
  /** A direct message to this connection on this channel. */
  message: [DirectMessage];
  /** The server refused the join (e.g. `presence_full`), or presence needs a WebSocket this client is not on. */
  error: [HeraldClientError];
};

/**
 * This client's membership of one channel's presence set. Presence and direct
 * messages need the WebSocket transport: each connection joins anew and gets
 * a new `client` id, so after a reconnect the others see a leave and a join.
 */
export class PresenceSet extends Emitter<PresenceEvents> {
  /** This connection's id in the set; undefined until joined. */
  client: string | undefined;
  private readonly current = new Map<string, PresenceMember>();

  constructor(
    readonly channel: string,
    readonly options: PresenceOptions,
    private readonly leaveSet: (set: PresenceSet) => void,
  ) {
    super();
  }

  /** Every member, this connection included. */
  get members(): PresenceMember[] {
    return [...this.current.values()];
  }

  /** Leaves the set (and unsubscribes, unless the channel is subscribed for its events too). */
  leave(): void {
    this.leaveSet(this);
  }

  /**
   * @internal A (re)join: the server's list replaces what was known; after a rejoin the differences are told as joins
   * and leaves (the first join has only `members`: nothing was known before it).
   */
  reset(client: string, members: PresenceMember[]): void {
    // A copy: the map is refilled below, and comparing with itself told no join at all.
    const previous = new Map(this.current);
    const next = new Map(members.map((m) => [m.client, m]));
    // Undefined at the first join: nothing was known before it.
    const oldSelf = this.client;
    this.client = client;
    for (const [id, member] of previous) if (!next.has(id) && id !== oldSelf) this.emit('leave', member);
    this.current.clear();
    for (const [id, member] of next) {
      this.current.set(id, member);
      if (oldSelf !== undefined && !previous.has(id) && id !== client) this.emit('join', member);
    }
    this.emit('members', this.members);
  }

  /** @internal */
  change(action: 'join' | 'leave', member: PresenceMember): void {
    if (action === 'join') this.current.set(member.client, member);
    else if (!this.current.delete(member.client)) return;
    this.emit(action, member);
  }

  /** @internal */
  deliver(message: DirectMessage): void {
    this.emit('message', message);
  }

  /** @internal */
  fail(error: HeraldClientError): void {
    this.emit('error', error);
  }
}

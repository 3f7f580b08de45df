import { randomBytes } from 'node:crypto';
import type { PresenceMember } from '@herald/protocol';
import type { Principal } from '../auth/principal.js';
import type { EphemeralFrames } from './frames.js';
import type { EphemeralListener, FrameSink, PresenceService } from './service.js';
import { TokenBucket } from './rate-limit.js';

/** A connection's id in presence sets and as the target of direct messages: random, so it says nothing. */
export function newClientId(): string {
  return `cl_${randomBytes(12).toString('base64url')}`;
}

/** `list` with `item` added; a new list holds exactly one (an empty array's first push reserves room for 16). */
function addTo(list: string[] | undefined, item: string): string[] {
  if (!list) return [item];
  list.push(item);
  return list;
}

/** Removes `item` from `list` if it is there; says whether it was. */
function removeFrom(list: string[] | undefined, item: string): boolean {
  const at = list ? list.indexOf(item) : -1;
  if (at < 0) return false;
  list!.splice(at, 1);
  return true;
}

/**
 * What a WebSocket session has beyond its log feeds: its `client` id, its
 * presence memberships and ephemeral listeners per subscribed channel, and its
 * own rate bucket for ephemeral publishes and direct messages. The session
 * calls in at subscribe, unsubscribe and close.
 *
 * Every idle socket holds one, so it holds little: no closure per channel (it is the listener itself), its
 * channels in short arrays (at most `limits.channelsPerRequest`), and its id and bucket only once used.
 */
export class SessionSignals implements EphemeralListener {
  private clientId: string | undefined;
  private bucket: TokenBucket | undefined;
  /** The channels whose ephemeral publishes this session hears. */
  private listening: string[] | undefined;
  /** Of those, the channels whose presence set it joined. */
  private joined: string[] | undefined;

  constructor(
    private readonly presence: PresenceService,
    private readonly sink: FrameSink,
  ) {}

  get client(): string {
    return (this.clientId ??= newClientId());
  }

  /** Made on first use: a bucket that has waited since the socket opened is full, as a new one is. */
  get gate(): TokenBucket {
    return (this.bucket ??= new TokenBucket(this.presence.ephemeralPerSecond));
  }

  ephemeral(frames: EphemeralFrames): void {
    this.sink.sendFrame(frames.websocket);
  }

  /**
   * The subscription to `channel` is in place: follow its ephemeral publishes and, when asked, join its
   * presence set. Returns what the `subscribed` frame carries about presence.
   */
  attach(principal: Principal | undefined, channel: string, presence: { info?: unknown } | undefined): { client: string; members: PresenceMember[] } | undefined {
    this.detach(channel);
    this.presence.listen(channel, this);
    this.listening = addTo(this.listening, channel);
    if (!presence) return undefined;
    let members: PresenceMember[];
    try {
      members = this.presence.join(principal, channel, this.client, presence.info, this.sink);
    } catch (error) {
      this.detach(channel);
      throw error;
    }
    this.joined = addTo(this.joined, channel);
    return { client: this.client, members };
  }

  detach(channel: string): void {
    if (!removeFrom(this.listening, channel)) return;
    this.presence.unlisten(channel, this);
    if (removeFrom(this.joined, channel)) this.presence.leave(channel, this.client);
  }

  detachAll(): void {
    for (const channel of [...(this.listening ?? [])]) this.detach(channel);
  }
}

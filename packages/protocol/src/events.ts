/** One event, the same on every transport. */
export interface HeraldEvent {
  /** Unique: `evt_` plus a time-sortable random part, or the publisher's own id. */
  id: string;
  channel: string;
  /** Per channel, strictly increasing from 1, with no gaps. */
  seq: number;
  type: string;
  data: unknown;
  /** ISO 8601, UTC, millisecond precision. */
  time: string;
  meta?: Record<string, unknown>;
  /**
   * Present only when the stored event cannot be served as it was published
   * (data written by an older version past today's limits): `data` is then null.
   */
  error?: { code: 'payload_too_deep'; message: string };
}

/** What a publisher sends for one event. */
export interface PublishInput {
  type?: string;
  data: unknown;
  id?: string;
}

export interface BatchPublishInput extends PublishInput {
  channel: string;
}

/** `GET /v1/channels/{channel}/events` */
export interface ChannelPage {
  events: HeraldEvent[];
  /** Pass as `after` on the next request. */
  next: number;
  /** Changes only if the channel's history was lost; a new epoch means resync. */
  epoch: string;
  /** True when events after `after` were already trimmed: the reader missed some. */
  truncated: boolean;
  /** The channel's latest seq when the page was read; a reader that wants only new events starts here. */
  head: number;
}

/** `GET /v1/events?channel=a&channel=b&cursor=…` */
export interface MultiChannelPage {
  events: HeraldEvent[];
  /** Opaque; pass back as `cursor` to resume every channel. */
  cursor: string;
  truncated: boolean;
  /** The channels whose history after the cursor was trimmed. */
  truncatedChannels: string[];
  /** What each of those lost: its position and the oldest seq still kept. */
  gaps: GapInfo[];
  /** Each channel's epoch: one that differs from the epoch a reader's position came from means that history was lost. */
  epochs: Record<string, string>;
  /**
   * Each channel's latest seq when it was read, as a single-channel page's `head`: a reader that wants only new events
   * starts there (the SDK reads every channel's epoch and head with one such request per connection).
   */
  heads: Record<string, number>;
}

/** Sent when history between a reader's position and the oldest kept event was trimmed. */
export interface GapInfo {
  channel: string;
  /** The reader's position. */
  after: number;
  /** The oldest seq still in the log; events after `after` and before this are lost. */
  oldest: number;
}

/**
 * Channel names. Not `.` or `..`: a name is a segment of a URL path (`/v1/channels/{name}/events`), where HTTP clients
 * and proxies resolve those two away (`/v1/channels/../events` becomes `/v1/events`) before Herald sees the request.
 */
export const CHANNEL_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.:-]{1,128}$/;
export const EVENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/**
 * The form of the ids Herald generates: `evt_` and a ULID. A publisher may not
 * choose an id of this form, so a generated id is never already taken and the
 * store need not look it up before writing it.
 */
export const GENERATED_EVENT_ID_PATTERN = /^evt_[0-9A-HJKMNP-TV-Z]{26}$/;
export const DEFAULT_EVENT_TYPE = 'message';

export function isValidChannel(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_PATTERN.test(name);
}

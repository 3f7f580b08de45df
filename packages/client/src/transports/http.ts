import { encodeCursor, type ChannelPage, type MultiChannelPage } from '@herald/protocol';
import { BaseTransport } from './base.js';
import type { TransportContext, TransportHandlers } from './types.js';

export function authHeaders(ctx: TransportContext): Record<string, string> {
  return ctx.token ? { authorization: `Bearer ${ctx.token}` } : {};
}

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The server's error code and message, when its answer was Herald's JSON error. */
    readonly code?: string,
    readonly said?: string,
    /** The server's `details.reason`, when it gave one (`too_many_waiting`: a long poll refused at the server's bound). */
    readonly reason?: string,
    /** The server's `details.channel`: the one channel a `403` refused. */
    readonly channel?: string,
  ) {
    super(message);
  }

  /**
   * A refusal that the same request will meet again, whatever the credential: a 4xx other than 401 and 403 (a
   * credential to refresh), 408 and 429 (worth a retry as they are). Too many channels for the server's
   * `limits.channelsPerRequest` is one.
   */
  get refusal(): boolean {
    return this.code !== undefined && this.status >= 400 && this.status < 500 && ![401, 403, 408, 429].includes(this.status);
  }
}

/** The error for an answer that is not 2xx: with the server's code and message when it is Herald's JSON error. */
export async function statusError(res: Response, doing: string): Promise<HttpStatusError> {
  let code: string | undefined;
  let said: string | undefined;
  let reason: string | undefined;
  let channel: string | undefined;
  if (res.headers.get('content-type')?.includes('json')) {
    try {
      const { error } = (await res.json()) as { error?: { code?: unknown; message?: unknown; details?: { reason?: unknown; channel?: unknown } } };
      if (typeof error?.code === 'string') code = error.code;
      if (typeof error?.message === 'string') said = error.message;
      if (typeof error?.details?.reason === 'string') reason = error.details.reason;
      if (typeof error?.details?.channel === 'string') channel = error.details.channel;
    } catch {
      // Not Herald's answer (a proxy's): the status says what there is to say.
    }
  } else {
    void res.body?.cancel().catch(() => {});
  }
  return new HttpStatusError(res.status, `HTTP ${res.status} ${doing}${said === undefined ? '' : `: ${said}`}`, code, said, reason, channel);
}

/**
 * SSE and polling read each channel's state once per connection, before the
 * stream or the first poll: its epoch, so a channel whose history was lost
 * restarts from the new history instead of a position that no longer means
 * anything, and, for a channel subscribed "from now on", its head, so events
 * published between this read and the stream are replayed, not lost. One
 * multi-channel request reads them all (its `epochs` and `heads`): with a
 * request per channel, a client of 100 channels sent 100 on every reconnect
 * (and every client at once after a server restart), which a browser sends six
 * at a time.
 */
export async function readChannelStates(ctx: TransportContext, handlers: TransportHandlers, signal: AbortSignal, wanted: readonly string[], checked: Set<string>): Promise<void> {
  const channels = wanted.filter((channel) => !checked.has(channel));
  if (channels.length === 0) return;
  const params = new URLSearchParams();
  for (const channel of channels) params.append('channel', channel);
  params.set('limit', '1');
  const res = await ctx.fetch(`${ctx.url}/v1/events?${params}`, { headers: authHeaders(ctx), signal });
  if (!res.ok) throw await statusError(res, 'reading the channels');
  const page = (await res.json()) as Pick<MultiChannelPage, 'epochs'> & Partial<Pick<MultiChannelPage, 'heads'>>;
  // A server from before `heads`: each channel's own page has its head.
  if (!page.heads) return readEachChannel(ctx, handlers, signal, checked, channels);
  // Read for a connection that has since restarted (or closed): the restart reads the channels afresh.
  if (signal.aborted) return;
  for (const channel of channels) stateRead(handlers, checked, channel, page.epochs[channel]!, page.heads[channel]!);
}

async function readEachChannel(ctx: TransportContext, handlers: TransportHandlers, signal: AbortSignal, checked: Set<string>, channels: string[]): Promise<void> {
  await Promise.all(
    channels.map(async (channel) => {
      const res = await ctx.fetch(`${ctx.url}/v1/channels/${encodeURIComponent(channel)}/events?after=0&limit=1`, { headers: authHeaders(ctx), signal });
      if (!res.ok) throw await statusError(res, `reading ${channel}`);
      const page = (await res.json()) as ChannelPage;
      if (!signal.aborted) stateRead(handlers, checked, channel, page.epoch, page.head);
    }),
  );
}

function stateRead(handlers: TransportHandlers, checked: Set<string>, channel: string, epoch: string, head: number): void {
  checked.add(channel);
  handlers.epoch(channel, epoch);
  handlers.live(channel, head);
}

/** `channel=a&channel=b&cursor=…`: `channels`, and the positions the client holds in them. */
function channelQuery(ctx: TransportContext, channels: readonly string[]): URLSearchParams {
  const params = new URLSearchParams();
  const positions = new Map<string, number>();
  for (const channel of channels) {
    params.append('channel', channel);
    const position = ctx.positions.get(channel);
    if (position !== undefined) positions.set(channel, position);
  }
  params.set('cursor', encodeCursor(positions));
  return params;
}

/**
 * Runs `request` with a deadline of one heartbeat timeout: a request sent on a pooled connection that died
 * silently (a NAT or a load balancer dropped it) gets no answer and no error, and no watchdog runs before
 * the stream starts, so without this the client would wait on it forever.
 */
export async function answeredInTime<T>(ctx: TransportContext, controller: AbortController, request: () => Promise<T>): Promise<T> {
  const deadline = setTimeout(() => controller.abort(new Error('no answer in time')), ctx.heartbeatTimeoutMs);
  try {
    return await request();
  } finally {
    clearTimeout(deadline);
  }
}

/** The server ended the connection because it is shutting down (SSE's `event: close` with reason `shutdown`). */
export class GoingAwayError extends Error {}

/** The server ended the stream because its credential expired or was revoked: refresh it, as after a `401`. */
export class CredentialEndedError extends Error {}

/**
 * A transport made of HTTP requests (SSE, polling). The channel set is part
 * of each request, so a change of channels restarts the request; positions
 * make the restart seamless.
 */
export abstract class HttpTransport extends BaseTransport {
  private controller: AbortController | undefined;
  private opened = false;
  /** Channels whose state this connection has read. */
  private readonly checked = new Set<string>();
  /**
   * Channels the server refused this connection (a `403` naming one): left out of its requests, each told to its
   * subscriptions once, as a WebSocket tells a refused subscription. Before, one such channel failed the whole
   * connection, and every channel with it, over and over.
   */
  private readonly refused = new Set<string>();

  /** The channels this connection asks for: every subscribed one the server has not refused it. */
  protected channels(): string[] {
    return [...this.ctx.positions.keys()].filter((channel) => !this.refused.has(channel));
  }

  /** `channel=a&channel=b&cursor=…` for {@link channels}, with the positions the client holds. */
  protected query(): URLSearchParams {
    return channelQuery(this.ctx, this.channels());
  }

  start(): void {
    const controller = new AbortController();
    this.controller = controller;
    void (async () => {
      await answeredInTime(this.ctx, controller, () => readChannelStates(this.ctx, this.handlers, controller.signal, this.channels(), this.checked));
      await this.run(controller);
    })().catch((error: unknown) => {
      if (controller !== this.controller) return; // replaced by a restart
      const status = error instanceof HttpStatusError ? error : undefined;
      const channel = status?.status === 403 ? status.channel : undefined;
      if (channel !== undefined && !this.ended && this.ctx.positions.has(channel) && !this.refused.has(channel)) {
        this.refused.add(channel);
        this.start();
        this.handlers.refused(channel, status!.code ?? 'forbidden', status!.said ?? status!.message);
        return;
      }
      const auth = status?.status === 401 || status?.status === 403 || error instanceof CredentialEndedError;
      const refused = status?.refusal ? { status: status.status, code: status.code!, message: status.said ?? status.message } : undefined;
      this.finish({ reason: (error as Error).message, auth, goingAway: error instanceof GoingAwayError, ...(refused && { refused }) });
    });
  }

  /** Runs until the connection fails (throws) or the controller aborts. */
  protected abstract run(controller: AbortController): Promise<void>;

  protected markOpen(): void {
    if (this.opened) return;
    this.opened = true;
    this.handlers.open();
  }

  protected get isOpen(): boolean {
    return this.opened;
  }

  channelsChanged(): void {
    if (this.ended) return;
    // A channel unsubscribed is read afresh if it is subscribed again: kept as read, one subscribed again without
    // `after` never learned the head it starts at, so the cursor left it out, which a poll reads as 0 (its whole
    // history again) and an SSE stream as "from now" (losing what came during the restart).
    for (const channel of this.checked) if (!this.ctx.positions.has(channel)) this.checked.delete(channel);
    for (const channel of this.refused) if (!this.ctx.positions.has(channel)) this.refused.delete(channel);
    this.controller?.abort();
    this.start();
  }

  protected cleanup(): void {
    this.controller?.abort();
  }
}

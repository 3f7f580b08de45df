import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeCursor, decodeStreamId, HeraldError, isStreamId, streamIdPrefix, type HeraldEvent } from '@herald/protocol';
import type { AppContext } from '../../http/context.js';
import { assertChannel, assertReadableChannels, channelsOf } from '../../http/channels.js';
import { ChannelFeed } from '../feed.js';
import { SseStream, type SseStreamSettings } from './stream.js';
import { answering } from '../answering.js';
import { assertOriginAllowed } from '../../http/cors.js';
import { countRealtimeDelivery } from '../../metrics/index.js';
import { parseSeq, queryPosition } from '../../http/position.js';

interface StreamQuery {
  after?: string | string[];
  lastEventId?: string | string[];
}

/**
 * Where to resume: the `Last-Event-ID` header a browser sends on reconnect, else the one position the query gives
 * (EventSource cannot set headers, so the query names the first connection's position, and the header, once there,
 * is the newer one). None means live only.
 */
function resumeToken(request: FastifyRequest, names: readonly string[]): string | undefined {
  const fromQuery = queryPosition(request.query, names);
  const header = request.headers['last-event-id'];
  return typeof header === 'string' && header !== '' ? header : fromQuery;
}

/**
 * Where each channel of a multi-channel stream starts: the v2 stream id this route issues, the v1 cursor it
 * issued before (and `/v1/events` still does), `0` for every channel from the beginning, or nothing: live.
 */
function multiChannelStarts(token: string | undefined, channels: readonly string[]): Array<number | undefined> {
  if (token === undefined || token === '') return channels.map(() => undefined);
  if (token === '0') return channels.map(() => 0);
  if (isStreamId(token)) return decodeStreamId(token, channels);
  if (/^\d+$/.test(token)) {
    throw new HeraldError('invalid_cursor', 'A multi-channel stream starts from ?after=0 (every channel from the beginning) or resumes from a stream id.');
  }
  const positions = decodeCursor(token);
  return channels.map((c) => positions.get(c));
}

const ignoreError = () => {};

/**
 * Fastify keeps its request and reply (and the request's child logger) reachable from listeners on the
 * response's `finish` and `error` until the response ends, which a stream does only at shutdown: kilobytes
 * per idle stream. Once hijacked they have nothing left to do for a 200 stream (the refusal counter's
 * onResponse hook acts on 4xx/5xx only), so let them go. Fastify's listener is the one on both events;
 * Node's own is on `finish` only. A no-op `error` listener stays, so a late error is never thrown.
 */
function releaseFastify(res: ServerResponse): void {
  const onError = new Set(res.listeners('error'));
  for (const listener of res.listeners('finish')) {
    if (!onError.has(listener)) continue;
    res.off('finish', listener as () => void);
    res.off('error', listener as () => void);
  }
  res.on('error', ignoreError);
}

export function sseRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { config, sse } = ctx;
  const removeStream = (stream: SseStream) => {
    sse.remove(stream);
    for (const channel of stream.channels()) ctx.presence.unlisten(channel, stream);
  };

  /**
   * The response head and the stream's first bytes; see `run` for when. `startId`, given when a channel starts live,
   * goes out with `retry:` in a block without data.
   */
  function begin(request: FastifyRequest, reply: FastifyReply, stream: SseStream, startId: string | undefined): void {
    reply.hijack();
    const res = reply.raw;
    releaseFastify(res);
    res.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      // An HTTP/1.0 body has no chunks: it ends when the connection closes (RFC 9112 §6.3), so none is kept alive.
      connection: request.raw.httpVersion === '1.0' ? 'close' : 'keep-alive',
    });
    res.socket?.setNoDelay(true);
    // The head goes out now, through Node; the body is written to the socket by the stream (see SseStream).
    res.flushHeaders();
    stream.begin();
    stream.write(`retry: ${config.sse.retry}\n${startId === undefined ? '' : `id: ${startId}\n`}\n`);
    if (!stream.closed) sse.add(stream);
    // The stream outlives the request's credential check: end it when the credential dies.
    stream.unwatch = ctx.watch.watch(request.principal, (reason) => stream.end(`credential ${reason}`));
    if (stream.closed) stream.unwatch();
  }

  /**
   * Fixes where every feed starts, then opens the stream, then replays and follows every feed until it closes.
   * The starting points are read before the client can tell that the stream is open: read after, a live stream
   * would start past an event its client published as soon as it saw the stream open. A failed read (the store is
   * down) is then an ordinary error answer, such as `503 store_unavailable`, not a stream cut after its `200`.
   */
  async function run(
    request: FastifyRequest,
    reply: FastifyReply,
    feeds: ChannelFeed[],
    stream: SseStream,
    starts: Array<number | undefined>,
    idOf: () => string,
  ): Promise<void> {
    stream.follow(feeds);
    try {
      await Promise.all(feeds.map((feed, i) => feed.open(starts[i])));
    } catch (error) {
      for (const feed of feeds) feed.stop();
      throw error;
    }
    // A stream that starts live names where it started: an id in a block without data sets the browser's last event
    // ID and dispatches nothing (WHATWG HTML, "dispatch the event"). Without it a client that saw no event before its
    // connection dropped reconnected with no Last-Event-ID, started live again, and never got what was published in
    // between. A stream resumed from a position gets it back on reconnect from the URL or the browser's own id.
    begin(request, reply, stream, starts.includes(undefined) ? idOf() : undefined);
    // The stream hears its channels' ephemeral publishes until it closes (removeStream). A client gone before the
    // handler ran has already closed it, and nothing would stop them then.
    if (!stream.closed) for (const feed of feeds) ctx.presence.listen(feed.channel, stream);
    void (async () => {
      for (const feed of feeds) await feed.replay();
    })().catch((err: unknown) => stream.fail(err));
  }

  const settings: SseStreamSettings = {
    maxBuffered: config.limits.sendBufferBytes,
    stallMs: config.limits.replayStallTimeout * 1000,
    replayBudget: ctx.replayBudget,
    logger: app.log,
    onClosed: removeStream,
  };
  /** A stream for this response; nothing is written to it until `begin`. */
  const newStream = (reply: FastifyReply) => new SseStream(reply.raw, settings);

  app.get<{ Params: { channel: string }; Querystring: StreamQuery }>(
    '/v1/channels/:channel/stream',
    {
      // No HEAD twin: a stream's body is written to the socket directly, and would follow a HEAD answer's head.
      exposeHeadRoute: false,
      onRequest: async (request) => {
        assertOriginAllowed(request.headers.origin, config.cors.origins, request.headers.host);
        assertChannel(request.params.channel);
        ctx.access.assertRead(request.principal, request.params.channel);
      },
    },
    async (request, reply) => {
      const after = parseSeq(resumeToken(request, ['lastEventId', 'after']));
      // Not before the connection answers it (a request pipelined behind another); the client may leave meanwhile.
      if (!(await answering(reply.raw, request.raw))) return reply.hijack();
      const stream = newStream(reply);
      // The stream is the feed's sink: `id: <seq>` events, no closures per stream.
      const feed = new ChannelFeed(ctx.log, request.params.channel, stream);
      await run(request, reply, [feed], stream, [after], () => String(feed.position));
    },
  );

  app.get<{ Querystring: StreamQuery & { cursor?: string | string[] } }>(
    '/v1/stream',
    {
      exposeHeadRoute: false,
      onRequest: async (request) => {
        assertOriginAllowed(request.headers.origin, config.cors.origins, request.headers.host);
        assertReadableChannels(ctx, request);
      },
    },
    async (request, reply) => {
      const channels = channelsOf(request.query);
      const token = resumeToken(request, ['lastEventId', 'after', 'cursor']);
      const starts = multiChannelStarts(token, channels);
      // Not before the connection answers it (a request pipelined behind another); the client may leave meanwhile.
      if (!(await answering(reply.raw, request.raw))) return reply.hijack();
      const stream = newStream(reply);
      const feeds: ChannelFeed[] = [];
      // The id of a multi-channel stream holds every channel's position, so one Last-Event-ID resumes them all;
      // positions only, in the URL's order: the names are in the URL, so the id stays small. This writes what
      // encodeStreamId makes, with the list's part made once.
      const prefix = streamIdPrefix(channels);
      const streamId = () => `${prefix}${feeds.map((f) => f.position).join('.')}`;
      const idLine = () => `id: ${streamId()}\n`;
      for (const channel of channels) {
        feeds.push(
          new ChannelFeed(ctx.log, channel, {
            event: (event: HeraldEvent) => {
              countRealtimeDelivery('sse');
              stream.write(idLine());
              stream.writeEvent(event, 'data');
            },
            gap: (gap) => stream.write(`${idLine()}event: gap\ndata: ${JSON.stringify(gap)}\n\n`),
            drained: () => stream.drained(),
            reserveReplay: (bytes, continuing) => stream.reserveReplay(bytes, continuing),
            failed: (err) => stream.fail(err),
          }),
        );
      }
      await run(request, reply, feeds, stream, starts, streamId);
    },
  );
}

import type { FastifyInstance, FastifyReply } from 'fastify';
import { decodeCursor, encodeCursor, type ChannelPage, type GapInfo, type HeraldEvent, type MultiChannelPage } from '@herald/protocol';
import type { AppContext } from '../../http/context.js';
import { assertChannel, assertReadableChannels, channelsOf } from '../../http/channels.js';
import type { ReadResult } from '../../store/types.js';
import type { Wait } from './long-poll.js';

interface PollQuery {
  after: number;
  limit: number;
  wait: number;
}

/** Where a reader stands after this page: the last event it got, else where it asked from (past any trim). */
function nextPosition(page: ReadResult, after: number, events: readonly HeraldEvent[]): number {
  if (events.length > 0) return events[events.length - 1]!.seq;
  return page.truncated ? page.trimmed : after;
}

/** Cancels the wait when the client goes away, so an abandoned poll frees its memory at once. */
function cancelOnDisconnect(reply: FastifyReply, wait: Wait): void {
  const onClose = () => wait.cancel();
  reply.raw.once('close', onClose);
  void wait.news.finally(() => reply.raw.off('close', onClose));
}

const byTime = (a: HeraldEvent, b: HeraldEvent) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0);

/**
 * Takes up to `limit` events across channels, oldest first, always from the
 * front of each channel's list so every channel's cursor stays exact.
 * Returns the events in that order, and what was taken per channel.
 */
function interleave(
  lists: ReadonlyArray<readonly HeraldEvent[]>,
  limit: number,
): { ordered: HeraldEvent[]; taken: HeraldEvent[][] } {
  const ordered: HeraldEvent[] = [];
  const taken = lists.map(() => [] as HeraldEvent[]);
  const heads = lists.map(() => 0);
  for (let n = 0; n < limit; n++) {
    let pick = -1;
    for (let i = 0; i < lists.length; i++) {
      const candidate = lists[i]![heads[i]!];
      if (candidate && (pick < 0 || byTime(candidate, lists[pick]![heads[pick]!]!) < 0)) pick = i;
    }
    if (pick < 0) break;
    const event = lists[pick]![heads[pick]!]!;
    taken[pick]!.push(event);
    ordered.push(event);
    heads[pick]! += 1;
  }
  return { ordered, taken };
}

export function pollRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { limits } = ctx.config;
  const pollQuery = {
    after: { type: 'integer', minimum: 0, default: 0 },
    limit: { type: 'integer', minimum: 1, maximum: limits.pageSize, default: 100 },
    wait: { type: 'number', minimum: 0, maximum: limits.pollWaitMax, default: 0 },
  } as const;

  app.get<{ Params: { channel: string }; Querystring: PollQuery }>(
    '/v1/channels/:channel/events',
    {
      schema: { querystring: { type: 'object', properties: pollQuery } },
      onRequest: async (request) => {
        assertChannel(request.params.channel);
        ctx.access.assertRead(request.principal, request.params.channel);
      },
    },
    async (request, reply): Promise<ChannelPage> => {
      const { channel } = request.params;
      const { after, limit, wait } = request.query;
      // Subscribe before reading: an append between the read and the wait cannot be missed.
      const waiting = wait > 0 ? ctx.longPoll.wait([channel], wait * 1000) : undefined;
      let page = await ctx.log.read(channel, after, limit);
      let events = page.events;
      if (waiting && events.length === 0 && !page.truncated) {
        cancelOnDisconnect(reply, waiting);
        const news = await waiting.news;
        if (news && news[0]!.seq <= after + 1) {
          // The bus handed us the new events themselves; no need to read them back.
          events = news.filter((e) => e.seq > after).slice(0, limit);
        } else if (news) {
          page = await ctx.log.read(channel, after, limit);
          events = page.events;
        }
      } else {
        waiting?.cancel();
      }
      return { events, next: nextPosition(page, after, events), epoch: page.epoch, truncated: page.truncated, head: Math.max(page.head, events.at(-1)?.seq ?? 0) };
    },
  );

  app.get<{ Querystring: Omit<PollQuery, 'after'> & { cursor?: string } }>(
    '/v1/events',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            channel: { type: 'array', items: { type: 'string' } },
            cursor: { type: 'string', maxLength: 65_536 },
            limit: pollQuery.limit,
            wait: pollQuery.wait,
          },
        },
      },
      onRequest: async (request) => assertReadableChannels(ctx, request),
    },
    async (request, reply): Promise<MultiChannelPage> => {
      const channels = channelsOf(request.query);
      const { limit, wait } = request.query;
      const positions = decodeCursor(request.query.cursor);
      const readAll = () => Promise.all(channels.map((c) => ctx.log.read(c, positions.get(c) ?? 0, limit)));
      const waiting = wait > 0 ? ctx.longPoll.wait(channels, wait * 1000) : undefined;
      let pages = await readAll();
      if (waiting && pages.every((p) => p.events.length === 0 && !p.truncated)) {
        cancelOnDisconnect(reply, waiting);
        if (await waiting.news) pages = await readAll();
      } else {
        waiting?.cancel();
      }

      const { ordered, taken } = interleave(pages.map((p) => p.events), limit);
      const next = new Map<string, number>();
      const gaps: GapInfo[] = [];
      channels.forEach((channel, index) => {
        const page = pages[index]!;
        const after = positions.get(channel) ?? 0;
        next.set(channel, nextPosition(page, after, taken[index]!));
        if (page.truncated) gaps.push({ channel, after, oldest: page.trimmed + 1 });
      });
      return {
        events: ordered,
        cursor: encodeCursor(next),
        truncated: gaps.length > 0,
        truncatedChannels: gaps.map((g) => g.channel),
        gaps,
      };
    },
  );
}

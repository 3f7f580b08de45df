import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeCursor, encodeCursor, HeraldError, type ChannelPage, type HeraldEvent, type MultiChannelPage } from '@herald/protocol';
import type { AppContext } from '../../http/context.js';
import { assertChannel, assertReadableChannels, channelsOf } from '../../http/channels.js';
import { ByteBudget, ChannelMerge, nextPosition } from './merge.js';
import { parseSeq, queryPosition } from '../../http/position.js';
import { requestHeaderBytes, type Wait } from './long-poll.js';
import { countLongPollRefused } from '../../metrics/index.js';
import { ClientGone, PollAnswer } from './answer-room.js';
import { cancelOnDisconnect } from './disconnect.js';

interface PollQuery {
  after?: string | string[];
  limit: number;
  wait: number;
}

/**
 * A parked poll's news, or null once the wait ends without any: at its timeout, when the client goes away, or when
 * its credential is revoked or expires (the next sweep ends the wait, and the answer is then `401`, not the events
 * published since; before, a poll parked with a token kept waiting up to `limits.pollWaitMax` after its key was
 * revoked, and got the events published meanwhile).
 *
 * Refused with `503` when parking it would pass `limits.parkedPollBytes`; see {@link tooManyWaiting}.
 */
async function parkedNews(ctx: AppContext, request: FastifyRequest, reply: FastifyReply, wait: Wait): Promise<readonly HeraldEvent[] | null> {
  if (!wait.park(requestHeaderBytes(request.raw))) throw tooManyWaiting(reply);
  // An abandoned poll frees its memory at once.
  cancelOnDisconnect(request, () => wait.cancel(), wait.news);
  const unwatch = ctx.watch.watch(request.principal, () => wait.cancel());
  let news: readonly HeraldEvent[] | null;
  try {
    news = await wait.news;
  } finally {
    unwatch();
  }
  await ctx.auth.liveness.assertLive(request.principal);
  return news;
}

/** Retry-After for a poll refused at the bound: 1 to 5 s, at random. */
const RETRY_AFTER_MIN_S = 1;
const RETRY_AFTER_SPREAD_S = 5;

/**
 * The refusal of a poll that would park past `limits.parkedPollBytes`. Its Retry-After is jittered: refusals come
 * in bursts (one publish on a channel thousands of polls wait on answers them all at once, they all poll again at once,
 * and those past the bound are refused together), and a fixed delay would bring the refused back together too. Nothing
 * is lost: the client polls again from the same position.
 */
function tooManyWaiting(reply: FastifyReply): HeraldError {
  countLongPollRefused();
  void reply.header('retry-after', String(RETRY_AFTER_MIN_S + Math.floor(Math.random() * RETRY_AFTER_SPREAD_S)));
  return new HeraldError('unavailable', 'Too many long polls are waiting on this server (limits.parkedPollBytes): poll again after Retry-After.', {
    reason: 'too_many_waiting',
  });
}

/**
 * The first read of a long poll, which runs after its wait is parked: if it fails, the wait goes with it. Left
 * parked, it kept its bus subscriptions and timer for up to `wait` seconds after the error answer had freed the
 * connection, so failing requests piled up waits that no connection bounded.
 */
async function settleOnError<T>(wait: Wait | undefined, read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    wait?.cancel();
    throw error;
  }
}

/**
 * Each channel's position in `cursor` (0 when it names none), in the order of `channels`: one number each. A parked
 * poll holds what its handler keeps for the whole wait, and the decoded cursor (a Map with its own copy of each name)
 * and the [channel, position] pairs it kept were 10 KB of a 100-channel poll.
 */
function positionsOf(channels: readonly string[], cursor: string | undefined): number[] {
  const positions = decodeCursor(cursor);
  return channels.map((channel) => positions.get(channel) ?? 0);
}

/**
 * Poll answers are written by hand around each event's JSON: the byte budget
 * needs every event's size anyway, and this way each is serialized once.
 */
function sendJson(reply: FastifyReply, answer: PollAnswer, eventsJson: readonly string[], rest: Record<string, unknown>): FastifyReply {
  const tail = JSON.stringify(rest).slice(1);
  // A page is the log as it stood: a cache between Herald and a reader of a public channel that kept one would answer
  // the same position with it again (an empty long poll, over and over) until it expired.
  void reply.type('application/json; charset=utf-8').header('cache-control', 'no-store');
  return answer.send(reply, `{"events":[${eventsJson.join(',')}]${tail === '}' ? '}' : `,${tail}`}`);
}

export function pollRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { limits } = ctx.config;
  /**
   * Its connection answering it and room for one answer (see answer-room.ts), taken before its events are read; none
   * when the client left meanwhile.
   */
  const startAnswer = (request: FastifyRequest, reply: FastifyReply) =>
    PollAnswer.start(request, reply, ctx.replayBudget, limits.pageBytes, limits.replayStallTimeout * 1000).catch((error: unknown) => {
      if (error instanceof ClientGone) return undefined;
      throw error;
    });
  // A `limit` past `limits.pageSize`, or a `wait` past `limits.pollWaitMax`, is read as that bound, not refused: a
  // client cannot know the server's bounds (the SDK's long polling asks for 1000 events and 25 s, `herald replay` for
  // 1000), and a page may hold fewer events, and a long poll end sooner, than asked anyway.
  const pollQuery = {
    // Read by parseSeq, as a stream's is: digits only, given once (a list, so that one given twice reaches it).
    after: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }], description: 'The seq to read after (default 0).' },
    limit: { type: 'integer', minimum: 1, default: Math.min(100, limits.pageSize) },
    wait: { type: 'number', minimum: 0, default: 0 },
  } as const;
  const bounded = (query: { limit: number; wait: number }) => ({ limit: Math.min(query.limit, limits.pageSize), wait: Math.min(query.wait, limits.pollWaitMax) });

  app.get<{ Params: { channel: string }; Querystring: PollQuery }>(
    '/v1/channels/:channel/events',
    {
      schema: { querystring: { type: 'object', properties: pollQuery } },
      onRequest: async (request) => {
        assertChannel(request.params.channel);
        ctx.access.assertRead(request.principal, request.params.channel);
      },
    },
    async (request, reply) => {
      const { channel } = request.params;
      const after = parseSeq(queryPosition(request.query, ['after'])) ?? 0;
      const { limit, wait } = bounded(request.query);
      const answer = await startAnswer(request, reply);
      if (!answer) return reply.hijack();
      try {
        // Subscribe before reading: an append between the read and the wait cannot be missed.
        const waiting = wait > 0 ? ctx.longPoll.wait([channel], wait * 1000) : undefined;
        let page = await settleOnError(waiting, ctx.log.read(channel, after, limit, limits.pageBytes));
        let events = page.events;
        if (waiting && events.length === 0 && !page.truncated) {
          answer.park();
          const news = await parkedNews(ctx, request, reply, waiting);
          await answer.resume();
          if (news && news[0]!.seq <= after + 1) {
            // The bus handed us the new events themselves; no need to read them back.
            events = news.filter((e) => e.seq > after).slice(0, limit);
          } else if (news) {
            page = await ctx.log.read(channel, after, limit, limits.pageBytes);
            events = page.events;
          }
        } else {
          waiting?.cancel();
        }
        const budget = new ByteBudget(limits.pageBytes);
        const json: string[] = [];
        for (const event of events) {
          const one = budget.take(event, json.length === 0);
          if (one === undefined) break;
          json.push(one);
        }
        const last = json.length > 0 ? events[json.length - 1]!.seq : undefined;
        const rest: Omit<ChannelPage, 'events'> = {
          next: nextPosition(page, after, last),
          epoch: page.epoch,
          truncated: page.truncated,
          head: Math.max(page.head, events.at(-1)?.seq ?? 0),
        };
        return sendJson(reply, answer, json, rest);
      } catch (error) {
        answer.fail();
        // Nobody to answer: the connection is gone.
        if (error instanceof ClientGone) return reply.hijack();
        throw error;
      }
    },
  );

  app.get<{ Querystring: Omit<PollQuery, 'after'> }>(
    '/v1/events',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            channel: { type: 'array', items: { type: 'string' } },
            // A list too, so that one given twice reaches queryPosition: invalid_cursor, as on a stream.
            cursor: { anyOf: [{ type: 'string', maxLength: 65_536 }, { type: 'array', items: { type: 'string' } }] },
            limit: pollQuery.limit,
            wait: pollQuery.wait,
          },
        },
      },
      onRequest: async (request) => assertReadableChannels(ctx, request),
    },
    async (request, reply) => {
      const channels = channelsOf(request.query);
      const { limit, wait } = bounded(request.query);
      if ((request.query as { after?: unknown }).after !== undefined) {
        throw new HeraldError('invalid_cursor', 'A multi-channel poll resumes from ?cursor= (the last answer\'s); ?after= is one channel\'s position.');
      }
      const afters = positionsOf(channels, queryPosition(request.query, ['cursor']));
      const answer = await startAnswer(request, reply);
      if (!answer) return reply.hijack();
      try {
        const waiting = wait > 0 ? ctx.longPoll.wait(channels, wait * 1000) : undefined;
        // Chosen by stubs, then only the chosen events are loaded: a poll of many channels of big events loads about a page.
        const merge = await settleOnError(waiting, ChannelMerge.open(ctx.log, channels, afters, limit));
        if (waiting && merge.empty) {
          answer.park();
          // Only the channel the news came on is read again (see ChannelMerge.reread).
          const channel = (await parkedNews(ctx, request, reply, waiting))?.[0]?.channel;
          await answer.resume();
          if (channel !== undefined) await merge.reread(channel);
        } else {
          waiting?.cancel();
        }
        const { taken, next, gaps, epochs, heads } = await merge.take(limit, new ByteBudget(limits.pageBytes));
        const rest: Omit<MultiChannelPage, 'events'> = {
          cursor: encodeCursor(next),
          truncated: gaps.length > 0,
          truncatedChannels: gaps.map((g) => g.channel),
          gaps,
          epochs,
          heads,
        };
        return sendJson(
          reply,
          answer,
          taken.map((t) => t.json),
          rest,
        );
      } catch (error) {
        answer.fail();
        // Nobody to answer: the connection is gone.
        if (error instanceof ClientGone) return reply.hijack();
        throw error;
      }
    },
  );
}

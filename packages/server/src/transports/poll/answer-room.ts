import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SocketReplays, type ReplayBudget, type ReplayReservation } from '../replay-budget.js';
import { countSlowConsumer } from '../../metrics/index.js';
import { answering } from '../answering.js';
import { cancelOnDisconnect } from './disconnect.js';

/**
 * One poll's answer under the node's replay budget (`limits.replayBytes`, see replay-budget.ts). Poll answers are
 * replays too: a client that pipelined 8 polls of a large backlog on each of 100 connections and read nothing made
 * the server hold 3.8 GB, 4 MiB per answer.
 *
 * A poll starts once its connection is answering it (answering.ts): once the answer before it on the connection has
 * been sent (a poll pipelined behind a parked one waits for it too), so a connection holds one answer at a time. Then a
 * poll takes room for a page before reading its events (waiting in turn when there is none), gives it back while it
 * is parked, and holds what its answer takes until the socket has sent it; a connection that sends nothing of it for
 * `stallMs` (5 s while others wait) is closed.
 */
export class PollAnswer {
  /** The room for a page while it is held, and its ledger: a new one for each (a ledger ends once idle). */
  private reservation: ReplayReservation | undefined;
  private ledger: SocketReplays | undefined;

  private constructor(
    private readonly request: FastifyRequest,
    private readonly socket: Socket,
    private readonly budget: ReplayBudget,
    private readonly bytes: number,
    private readonly stallMs: number,
  ) {}

  /** Waits for the connection to answer this poll, then for room for a page. */
  static async start(request: FastifyRequest, reply: FastifyReply, budget: ReplayBudget, bytes: number, stallMs: number): Promise<PollAnswer> {
    const socket = request.raw.socket;
    if (!socket || !(await answering(reply.raw, request.raw))) throw gone();
    const answer = new PollAnswer(request, socket, budget, bytes, stallMs);
    await answer.room();
    return answer;
  }

  /** Parked: no room held while it waits for news (the connection still answers it, and nothing behind it). */
  park(): void {
    this.release();
  }

  /** Woken: room for a page again. */
  async resume(): Promise<void> {
    await this.room();
  }

  /**
   * Sends `body` on `reply`, its bytes held until sent: once the response has handed them to the socket, which Node's
   * response says with `prefinish` (undocumented, but what its own `finish` follows; `finish` waits for the socket
   * to have sent them, which a client that reads nothing never lets happen).
   */
  send(reply: FastifyReply, body: string): FastifyReply {
    const res = reply.raw;
    const written = () => {
      res.off('close', closed);
      // Bytes, as the socket holds them: a string's length counts UTF-16 units, a third of what CJK text takes.
      if (this.ledger) this.ledger.queued += Buffer.byteLength(body);
      this.release();
    };
    const closed = () => {
      res.off('prefinish', written);
      this.fail();
    };
    res.once('prefinish', written);
    res.once('close', closed);
    return reply.send(body);
  }

  /** The poll ends without an answer sent through `send` (an error): its room goes back. */
  fail(): void {
    this.release();
  }

  private async room(): Promise<void> {
    if (this.socket.destroyed) throw gone();
    const socket = this.socket;
    const outlet = { get buffered() { return socket.writableLength; } };
    const ledger = new SocketReplays(this.budget, outlet, socket, this.stallMs, () => this.stalled());
    this.ledger = ledger;
    // Before new replays: the connection has sent every answer so far, so its client reads along.
    const reservation = ledger.reserve(this.bytes, true);
    this.reservation = reservation;
    if (!reservation.ready) return;
    // A client gone while it waited withdraws its reservation.
    cancelOnDisconnect(this.request, () => reservation.done(), reservation.ready);
    await reservation.ready;
    if (!reservation.isGranted || this.request.raw.destroyed) throw gone();
  }

  /** The page's reservation is done: what the answer queued, if any, is held until sent. */
  private release(): void {
    const reservation = this.reservation;
    this.reservation = undefined;
    reservation?.done();
  }

  private stalled(): void {
    this.request.log.warn({ buffered: this.socket.writableLength }, 'poll client read nothing of its answer: closing its connection');
    countSlowConsumer('long_poll');
    this.socket.destroy();
  }
}

/**
 * The client left while its poll waited for its connection or for room: there is nothing to answer, and nothing went wrong
 * on the server's side (a HeraldError would be logged as a failure), so the route ends the request quietly.
 */
export class ClientGone extends Error {
  constructor() {
    super('The client closed its connection before its poll could be answered.');
  }
}

function gone(): ClientGone {
  return new ClientGone();
}

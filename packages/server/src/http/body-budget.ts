import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';

/** Retry-After for a body refused at the bound: 1 to 5 s, at random, so refused senders do not return together. */
const RETRY_AFTER_MIN_S = 1;
const RETRY_AFTER_SPREAD_S = 5;

/**
 * Bounds what request bodies still arriving hold together (`limits.incomingBodyBytes`). Each body is buffered whole
 * before it is parsed or its signature checked, and `limits.bodyBytes` and `limits.requestTimeout` bound one: a
 * thousand connections that each sent most of a 1 MiB body and stalled held a gigabyte for 30 s, with no credential
 * (an inbound webhook source needs only its name). A body is counted at its Content-Length (at most
 * `limits.bodyBytes`; a chunked one at `limits.bodyBytes`) from before its first byte is read until its answer is
 * sent or its connection closes; one that would pass the bound is answered 503 (`too_many_bodies`, with Retry-After)
 * without being read. One body is always let in when none is arriving, whatever the bound.
 */
export function installBodyBudget(app: FastifyInstance, limits: { incomingBodyBytes: number; bodyBytes: number }): void {
  let incoming = 0;
  app.addHook('preParsing', (request, reply, payload, done) => {
    const length = request.headers['content-length'];
    if (length === undefined && request.headers['transfer-encoding'] === undefined) return done(null, payload);
    const counted = length === undefined ? limits.bodyBytes : Math.min(Number(length) || 0, limits.bodyBytes);
    if (counted === 0) return done(null, payload);
    if (incoming > 0 && incoming + counted > limits.incomingBodyBytes) {
      void reply.header('retry-after', String(RETRY_AFTER_MIN_S + Math.floor(Math.random() * RETRY_AFTER_SPREAD_S)));
      return done(
        new HeraldError('unavailable', 'Too many request bodies are arriving at this server (limits.incomingBodyBytes): send again after Retry-After.', {
          reason: 'too_many_bodies',
        }),
      );
    }
    incoming += counted;
    reply.raw.once('close', () => {
      incoming -= counted;
    });
    done(null, payload);
  });
}

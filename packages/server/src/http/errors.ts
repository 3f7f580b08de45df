import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, HeraldError, type ErrorCode } from '@herald/protocol';
import { diskFullError, isDiskFull, type WriteHealth } from '../store/disk-full.js';
import type { HTTPMethod } from 'find-my-way';
import { RouteMethods } from './route-methods.js';
import { LogBudget } from '../util/log-budget.js';
import { ignoredCookie } from './authenticate.js';

/** Seconds a 503 asks the client to wait before retrying. */
const RETRY_AFTER_SECONDS = 5;

/**
 * An error's answer: its status and JSON, and for a 503 how long to wait before retrying (unless the route said it
 * already: a long poll refused at its bound sets its own). Nothing is logged.
 */
export function sendError(reply: FastifyReply, error: HeraldError): FastifyReply {
  if (error.status === 503 && !reply.hasHeader('retry-after')) void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  return reply.code(error.status).send(error.toJSON());
}

/** Fastify's own error codes, mapped to Herald's catalogue. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
};

/**
 * A schema refusal's message, with what Ajv keeps only in the details: the values allowed ("must be equal to one of the
 * allowed values", of which?), or the property that is not ("must NOT have additional properties", which?).
 */
function schemaMessage(error: FastifyError): string {
  const params = error.validation?.[0]?.params as { allowedValues?: unknown; additionalProperty?: unknown } | undefined;
  if (Array.isArray(params?.allowedValues)) return `${error.message}: ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  if (typeof params?.additionalProperty === 'string') return `${error.message}: ${JSON.stringify(params.additionalProperty)}`;
  return error.message;
}

/**
 * A query parameter given more than once (`?limit=5&limit=6`) reaches the schema as a list, which it refuses as the
 * wrong type ("must be integer"): say what is wrong instead.
 */
function repeatedParameter(error: FastifyError, request: FastifyRequest | undefined): HeraldError | undefined {
  const first = error.validation?.[0];
  // A refusal of its type only: a parameter that may be repeated can still be refused for how many times it is.
  if (error.validationContext !== 'querystring' || !request || first?.keyword !== 'type') return undefined;
  const name = first.instancePath.slice(1);
  const value = name ? (request.query as Record<string, unknown> | undefined)?.[name] : undefined;
  if (!Array.isArray(value)) return undefined;
  return new HeraldError('bad_request', `The query parameter ${JSON.stringify(name)} is given ${value.length} times: give it once.`, error.validation);
}

function toHeraldError(error: FastifyError, request?: FastifyRequest): HeraldError | undefined {
  if (error instanceof HeraldError) return error;
  if (isDiskFull(error)) return diskFullError(error);
  if (error.validation) return repeatedParameter(error, request) ?? new HeraldError('bad_request', schemaMessage(error), error.validation);
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    // The route's own limit, else the server's (limits.bodyBytes): a client told the bound can split its batch.
    const limit = request?.routeOptions.bodyLimit;
    return new HeraldError('payload_too_large', limit === undefined ? undefined : `The body is over the size limit of ${limit} bytes.`);
  }
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
  if (mapped) return new HeraldError(mapped, mapped === 'invalid_json' ? `The body is not valid JSON: ${error.message}` : undefined);
  // Fastify's JSON parser throws a SyntaxError tagged with a 400.
  if (error instanceof SyntaxError && error.statusCode === 400) {
    return new HeraldError('invalid_json', `The body is not valid JSON: ${error.message}`);
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code = (Object.keys(ErrorCodes) as ErrorCode[]).find((c) => ErrorCodes[c].status === status) ?? 'bad_request';
    return new HeraldError(code, error.message);
  }
  return undefined;
}

/**
 * `request failed` lines for a 503 (the store unreachable or out of disk), per error code: the first at once, then
 * one a minute with the count of those not logged. Every request fails the same way until the store is back, and a
 * line with a stack for each one was thousands a minute under load.
 */
const UNAVAILABLE_LINES_PER_SECOND = 1 / 60;

/** The answer to a request that arrives while the server stops (`details.reason` tells a client it is planned). */
export const shuttingDown = (): HeraldError => new HeraldError('unavailable', 'The server is shutting down.', { reason: 'shutting_down' });
const isShuttingDown = (error: HeraldError): boolean => (error.details as { reason?: unknown } | undefined)?.reason === 'shutting_down';

/** Every error leaves as `{"error":{"code","message"}}` with a code from the catalogue. */
export function installErrorHandling(app: FastifyInstance, writes?: WriteHealth, origins: readonly string[] = []): void {
  const unavailableLog = new LogBudget(UNAVAILABLE_LINES_PER_SECOND);
  app.setErrorHandler((error: FastifyError, request, reply) => {
    // Any write (keys, endpoints, deliveries as well as appends) that finds the disk full marks the store not ready.
    writes?.failed(error);
    let herald = toHeraldError(error, request);
    const cookie = herald?.code === 'unauthorized' ? ignoredCookie(request, origins) : undefined;
    if (herald && cookie) herald = new HeraldError('unauthorized', `${herald.message} ${cookie}`, herald.details);
    if (herald) {
      if (isShuttingDown(herald)) {
        // A planned refusal while the server stops: `shutting down` is logged once; the client retries elsewhere.
      } else if (herald.status === 503) {
        const logged = unavailableLog.admit(herald.code);
        if (logged) request.log.error(logged.unlogged > 0 ? { err: error, unlogged: logged.unlogged } : { err: error }, 'request failed');
      } else if (herald.status >= 500) {
        request.log.error({ err: error }, 'request failed');
      }
      return sendError(reply, herald);
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send(new HeraldError('internal').toJSON());
  });
  // Called before any route is added (see buildApp), so it sees every one.
  const routes = new RouteMethods({ maxParamLength: MAX_PARAM_LENGTH });
  app.addHook('onRoute', routes.add);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = routes.allowed(path);
    // A route for this very method that found nothing (a static file that is not there) is a 404 like any other;
    // OPTIONS reaches here from @fastify/cors's route whenever the request is no preflight.
    if (allowed.length > 0 && (request.method === 'OPTIONS' || !allowed.includes(request.method as HTTPMethod))) {
      void reply.header('allow', allowed.join(', '));
      // An OPTIONS that is no CORS preflight asks what the path is served for (RFC 9110 §9.3.7).
      if (request.method === 'OPTIONS') return reply.code(204).send();
      const error = new HeraldError('method_not_allowed', `${path} is served for ${allowed.join(', ')}, not ${request.method}.`);
      return reply.code(405).send(error.toJSON());
    }
    const error = new HeraldError('not_found', `No route for ${request.method} ${path}.`);
    return reply.code(404).send(error.toJSON());
  });
}

/** The router's bound on one path segment: channel names are up to 128 characters, longer ones reach the handler and get invalid_channel. */
export const MAX_PARAM_LENGTH = 1024;

/** Fastify's errors from before routing (`frameworkErrors`), in Herald's shape. */
export function frameworkErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  let herald: HeraldError;
  if (error.code === 'FST_ERR_BAD_URL') herald = new HeraldError('bad_request', `The URL is not valid: ${error.message}.`);
  // Not Fastify's message, which repeats the whole path back (up to the 16 KiB header limit).
  else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') herald = new HeraldError('uri_too_long', `A path segment of the URL is over ${MAX_PARAM_LENGTH} characters.`);
  else herald = toHeraldError(error) ?? new HeraldError('internal');
  void reply.code(herald.status).send(herald.toJSON());
}

/**
 * Node's `clientError`: a request Node's HTTP parser refused before Fastify saw it (headers over
 * `--max-http-header-size`, a malformed request line, a request that took too long). Answered in Herald's
 * JSON shape, then the connection is closed, as Node does.
 */
export function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let herald: HeraldError;
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    herald = new HeraldError('headers_too_large', 'The request line and headers are over the server\'s limit (16 KiB by default): shorten the URL, the Last-Event-ID header or the cookies.');
  } else if (error.code === 'HPE_URI_TOO_LONG') {
    herald = new HeraldError('uri_too_long');
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    herald = new HeraldError('request_timeout');
  } else {
    herald = new HeraldError('bad_request', `The request is not valid HTTP/1.1${error.code ? ` (${error.code})` : ''}.`);
  }
  // Not the error itself: Node puts the bytes it could not parse on it as `rawPacket`, which pino would log whole, and
  // those are the request line and headers: `?token=…`, `Authorization`, cookies, a webhook's signature.
  this.log.debug({ code: error.code, reason: error.message }, 'client error');
  answerOnSocket(socket, herald);
}

/**
 * Writes `herald` as the one answer on a connection no route will serve (a request Node could not parse, a CONNECT),
 * in Herald's JSON shape, and closes it.
 */
export function answerOnSocket(socket: Socket, herald: HeraldError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(herald.toJSON());
  socket.end(
    `HTTP/1.1 ${herald.status} ${STATUS_CODES[herald.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  // The client may keep sending; do not let it hold the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
}

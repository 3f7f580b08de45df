import type { FastifyError, FastifyInstance } from 'fastify';
import { ErrorCodes, HeraldError, type ErrorCode } from '@herald/protocol';

/** Fastify's own error codes, mapped to Herald's catalogue. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
};

function toHeraldError(error: FastifyError): HeraldError | undefined {
  if (error instanceof HeraldError) return error;
  if (error.validation) return new HeraldError('bad_request', error.message, error.validation);
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

/** Every error leaves as `{"error":{"code","message"}}` with a code from the catalogue. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const herald = toHeraldError(error);
    if (herald) {
      if (herald.status >= 500) request.log.error({ err: error }, 'request failed');
      return reply.code(herald.status).send(herald.toJSON());
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send(new HeraldError('internal').toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new HeraldError('not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`);
    return reply.code(404).send(error.toJSON());
  });
}

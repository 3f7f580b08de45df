import swagger from '@fastify/swagger';
import fastifyPlugin from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { ErrorCodes, WS_CLIENT_FRAME_SCHEMAS, WS_SERVER_FRAME_SCHEMAS } from '@herald/protocol';
import type { AppContext } from './context.js';
import { VERSION } from '../version.js';

export const OPENAPI_PATH = '/v1/openapi.json';

/** Who may call a route: none (public or provider-signed), the admin, or any Herald credential. */
type Auth = 'none' | 'admin' | 'any';

interface Operation {
  tag: string;
  summary: string;
  auth?: Auth;
  /** Server-Sent Events: a `text/event-stream` answer. */
  sse?: boolean;
  /** A text answer (Prometheus). */
  text?: string;
  /** Takes a W3C `traceparent` header, kept with the events it appends. */
  traced?: boolean;
}

/**
 * Tags, summaries and security of each route, by `METHOD url`. A route not
 * listed still appears in the document (generated from its schema), with a
 * summary made from its method and path.
 */
const OPERATIONS: Record<string, Operation> = {
  'GET /healthz': { tag: 'Operations', summary: 'Liveness: 200 while the process serves requests.', auth: 'none' },
  'GET /readyz': { tag: 'Operations', summary: 'Readiness: 503 while the store cannot be reached; `degraded` while the bus is down.', auth: 'none' },
  'GET /metrics': { tag: 'Operations', summary: 'Prometheus metrics (text format 0.0.4).', auth: 'admin', text: 'text/plain; version=0.0.4' },
  [`GET ${OPENAPI_PATH}`]: { tag: 'Operations', summary: 'This OpenAPI 3.1 document.', auth: 'none' },
  'POST /v1/channels/:channel/events': { tag: 'Events', summary: 'Publish one event (201; 200 for an idempotent replay).', traced: true },
  'POST /v1/events': { tag: 'Events', summary: 'Publish up to limits.batchEvents events atomically.', traced: true },
  'GET /v1/channels/:channel/events': { tag: 'Events', summary: 'Poll, or long-poll with `wait`, one channel after a seq.' },
  'GET /v1/events': { tag: 'Events', summary: 'Poll, or long-poll, several channels with one opaque cursor.' },
  'GET /v1/channels/:channel/stream': { tag: 'Streaming', summary: 'Server-Sent Events of one channel; the event id is the seq.', sse: true },
  'GET /v1/stream': { tag: 'Streaming', summary: 'Server-Sent Events of several channels; the event id is a cursor over all of them.', sse: true },
  'POST /v1/keys': { tag: 'Keys', summary: 'Create an API key (the secret is shown once).', auth: 'admin' },
  'GET /v1/keys': { tag: 'Keys', summary: 'List API keys.', auth: 'admin' },
  'GET /v1/keys/:id': { tag: 'Keys', summary: 'Show one API key.', auth: 'admin' },
  'DELETE /v1/keys/:id': { tag: 'Keys', summary: 'Revoke an API key and everything it minted.', auth: 'admin' },
  'POST /v1/tokens': { tag: 'Keys', summary: 'Mint a subscriber token (JWT) for a browser.' },
  'POST /v1/sources': { tag: 'Inbound webhooks', summary: 'Create an inbound webhook source.', auth: 'admin' },
  'GET /v1/sources': { tag: 'Inbound webhooks', summary: 'List sources with their counters.', auth: 'admin' },
  'GET /v1/sources/:name': { tag: 'Inbound webhooks', summary: 'Show one source.', auth: 'admin' },
  'DELETE /v1/sources/:name': { tag: 'Inbound webhooks', summary: 'Delete a source.', auth: 'admin' },
  'POST /v1/sources/:name/rotate': { tag: 'Inbound webhooks', summary: "Rotate a source's signing secret.", auth: 'admin' },
  'POST /v1/ingest/:source': { tag: 'Inbound webhooks', summary: "Where a provider delivers; authenticated by the provider's signature.", auth: 'none', traced: true },
  'POST /v1/endpoints': { tag: 'Outbound webhooks', summary: 'Register an outbound endpoint.', auth: 'admin' },
  'GET /v1/endpoints': { tag: 'Outbound webhooks', summary: 'List endpoints.', auth: 'admin' },
  'GET /v1/endpoints/:id': { tag: 'Outbound webhooks', summary: 'Show one endpoint.', auth: 'admin' },
  'GET /v1/endpoints/:id/secret': { tag: 'Outbound webhooks', summary: "Show an endpoint's signing secrets.", auth: 'admin' },
  'PATCH /v1/endpoints/:id': { tag: 'Outbound webhooks', summary: 'Change an endpoint (re-enable it with enabled: true).', auth: 'admin' },
  'DELETE /v1/endpoints/:id': { tag: 'Outbound webhooks', summary: 'Delete an endpoint and its deliveries.', auth: 'admin' },
  'POST /v1/endpoints/:id/rotate-secret': { tag: 'Outbound webhooks', summary: 'Rotate the signing secret, signing with both for a grace period.', auth: 'admin' },
  'GET /v1/endpoints/:id/deliveries': { tag: 'Outbound webhooks', summary: "List an endpoint's deliveries, by status.", auth: 'admin' },
  'POST /v1/endpoints/:id/recover': { tag: 'Outbound webhooks', summary: 'Re-enqueue failed deliveries created in a time range.', auth: 'admin' },
  'GET /v1/deliveries/:id': { tag: 'Outbound webhooks', summary: 'Show one delivery.', auth: 'admin' },
  'GET /v1/deliveries/:id/attempts': { tag: 'Outbound webhooks', summary: "A delivery's attempts.", auth: 'admin' },
  'POST /v1/deliveries/:id/retry': { tag: 'Outbound webhooks', summary: 'Retry one failed delivery now.', auth: 'admin' },
  'GET /v1/nodes': { tag: 'Cluster', summary: 'The live nodes with their heartbeats and connection counts.', auth: 'admin' },
};

const SECURITY: Record<Auth, Array<Record<string, string[]>>> = {
  none: [],
  admin: [{ apiKey: [] }, { tokenQuery: [] }],
  any: [{ apiKey: [] }, { subscriberToken: [] }, { tokenQuery: [] }],
};

const ERROR_SCHEMA = {
  type: 'object',
  description: 'Every error Herald answers. `code` never changes meaning.',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: {
        code: { type: 'string', enum: Object.keys(ErrorCodes) },
        message: { type: 'string' },
        details: { description: 'Machine-readable detail, for some codes (validation errors, readiness).' },
      },
    },
  },
} as const;

const SSE_DESCRIPTION =
  'A `text/event-stream`: `retry:` first, then `id:` + `data:` (the event JSON) per event, named `gap` and `close` events, and `: ping` comments.';

function operationOf(method: string, url: string): Operation {
  return OPERATIONS[`${method} ${url}`] ?? { tag: url.split('/')[2] ?? 'Other', summary: `${method} ${url}` };
}

const capitalized = (s: string) => s[0]!.toUpperCase() + s.slice(1);

// The document is plain JSON walked by key; a precise type for all of OpenAPI would add nothing here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** Adds what the route schemas do not say: the error answers, SSE and text bodies, the WebSocket endpoint and its frames. */
function complete(document: Json): Json {
  const doc = structuredClone(document);
  doc.components ??= {};
  doc.components.schemas ??= {};
  doc.components.schemas.Error = ERROR_SCHEMA;
  const clientFrames: Json[] = [];
  const serverFrames: Json[] = [];
  for (const [op, schema] of Object.entries(WS_CLIENT_FRAME_SCHEMAS)) {
    doc.components.schemas[`WsClient${capitalized(op)}`] = schema;
    clientFrames.push({ $ref: `#/components/schemas/WsClient${capitalized(op)}` });
  }
  for (const [op, schema] of Object.entries(WS_SERVER_FRAME_SCHEMAS)) {
    doc.components.schemas[`WsServer${capitalized(op)}`] = schema;
    serverFrames.push({ $ref: `#/components/schemas/WsServer${capitalized(op)}` });
  }
  doc.components.schemas.WsClientFrame = { description: 'A frame a client sends (JSON text).', oneOf: clientFrames, discriminator: { propertyName: 'op' } };
  doc.components.schemas.WsServerFrame = { description: 'A frame the server sends (JSON text).', oneOf: serverFrames, discriminator: { propertyName: 'op' } };
  const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const [method, operation] of Object.entries<Json>(item)) {
      if (typeof operation !== 'object' || !operation.responses) continue;
      const url = path.replace(/\{([^}]+)\}/g, ':$1');
      const meta = operationOf(method.toUpperCase(), url);
      operation.responses['4XX'] ??= errorResponse('A client error: `{error: {code, message, details?}}`.');
      operation.responses['5XX'] ??= errorResponse('A server error, or not ready (503, with `Retry-After` when retrying helps).');
      if (meta.traced) {
        operation.parameters = [
          ...(operation.parameters ?? []),
          {
            name: 'traceparent',
            in: 'header',
            required: false,
            description: 'W3C trace context; kept as `meta.traceparent` and sent on every outbound delivery of the event. An invalid value is ignored.',
            schema: { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}' },
          },
        ];
      }
      if (meta.sse) {
        operation.responses['200'] = { description: SSE_DESCRIPTION, content: { 'text/event-stream': { schema: { type: 'string' } } } };
        delete operation.responses.default;
      } else if (meta.text) {
        operation.responses['200'] = { description: 'The Prometheus text exposition format.', content: { [meta.text]: { schema: { type: 'string' } } } };
      }
    }
  }

  doc.paths['/v1/ws'] = {
    get: {
      tags: ['Streaming'],
      summary: 'WebSocket: subscribe, publish and receive events as JSON text frames.',
      description:
        'An HTTP/1.1 upgrade (RFC 6455). The client sends `WsClientFrame`s and receives `WsServerFrame`s. A bad credential is accepted, ' +
        'then closed with 1008; a slow consumer is closed with 1013, an oversized frame with 1009, shutdown with 1001.',
      operationId: 'websocket',
      security: SECURITY.any.concat([{}]),
      parameters: [
        { name: 'token', in: 'query', required: false, schema: { type: 'string' }, description: 'A credential, for browsers that cannot set headers.' },
        { name: 'Upgrade', in: 'header', required: true, schema: { const: 'websocket' } },
      ],
      responses: {
        '101': {
          description: 'Switching protocols: from here on, frames.',
          content: {
            'application/json': {
              schema: { type: 'object', properties: { client: { $ref: '#/components/schemas/WsClientFrame' }, server: { $ref: '#/components/schemas/WsServerFrame' } } },
            },
          },
        },
        '4XX': errorResponse('Refused before the upgrade: 403 for an Origin not in cors.origins, 404 for another path.'),
        '503': errorResponse('Shutting down.'),
      },
    },
  };
  return doc;
}

/**
 * `@fastify/swagger` collects every route's own JSON schemas as it is
 * registered; this adds tags, summaries and security, and serves the result at
 * `/v1/openapi.json`. Call before any route is added.
 */
export function installOpenApi(app: FastifyInstance, ctx: AppContext): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Herald',
        version: VERSION,
        description: 'A self-hosted gateway for webhooks and realtime push: one durable, ordered log per channel, delivered over polling, SSE, WebSockets and signed webhooks.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'The admin key or an API key, as `Authorization: Bearer …`.' },
          subscriberToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A subscriber token (HS256 JWT) from POST /v1/tokens or minted by your backend.' },
          tokenQuery: { type: 'apiKey', in: 'query', name: 'token', description: 'Any credential as `?token=` (EventSource and browser WebSockets cannot set headers).' },
        },
      },
      security: SECURITY.any,
    },
    transform: ({ schema, url, route }) => {
      const method = (Array.isArray(route.method) ? route.method[0] : route.method) as string;
      const meta = operationOf(method, url);
      const given = (schema ?? {}) as Json;
      const signed = (route.config as { signedByProvider?: boolean } | undefined)?.signedByProvider === true;
      const auth: Auth = url === '/metrics' && ctx.config.metrics.public ? 'none' : (meta.auth ?? (signed ? 'none' : 'any'));
      return {
        schema: {
          ...given,
          tags: given.tags ?? [meta.tag],
          summary: given.summary ?? meta.summary,
          security: given.security ?? SECURITY[auth],
        },
        url,
      } as never;
    },
  });

  let cached: Json | undefined;
  // After the swagger plugin has loaded, so this route is in the document too.
  void app.register(
    fastifyPlugin(async (api: FastifyInstance) => {
      api.get(OPENAPI_PATH, async (_request, reply) => {
        cached ??= complete(app.swagger() as Json);
        return reply.header('cache-control', 'no-cache').send(cached);
      });
    }),
  );
}

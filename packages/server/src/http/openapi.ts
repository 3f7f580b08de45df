import swagger from '@fastify/swagger';
import fastifyPlugin from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { ErrorCodes, WS_CLIENT_FRAME_SCHEMAS, WS_SERVER_FRAME_SCHEMAS } from '@herald/protocol';
import type { AppContext } from './context.js';
import { VERSION } from '../version.js';
import { ENDPOINT_INFO_SCHEMA } from '../delivery/endpoints-api.js';
import { IDEMPOTENCY_KEY_MAX } from './routes/publish.js';

export const OPENAPI_PATH = '/v1/openapi.json';

/**
 * Who may call a route: none (public or provider-signed), the admin, any Herald credential, the admin or an
 * endpoint-portal session (confined to its tenant), or a portal session only.
 */
type Auth = 'none' | 'admin' | 'any' | 'adminOrPortal' | 'portal';

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
  /** Takes an `Idempotency-Key` header (a publish). */
  idempotent?: boolean;
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
  'POST /v1/channels/:channel/events': { tag: 'Events', summary: 'Publish one event (201; 200 for an idempotent replay).', traced: true, idempotent: true },
  'POST /v1/events': { tag: 'Events', summary: 'Publish up to limits.batchEvents events atomically.', traced: true, idempotent: true },
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
  'POST /v1/endpoints': { tag: 'Outbound webhooks', summary: 'Register an outbound endpoint.', auth: 'adminOrPortal' },
  'GET /v1/endpoints': { tag: 'Outbound webhooks', summary: "List endpoints (`?tenant=`: one tenant's; a portal session lists its own).", auth: 'adminOrPortal' },
  'GET /v1/endpoints/:id': { tag: 'Outbound webhooks', summary: 'Show one endpoint.', auth: 'adminOrPortal' },
  'GET /v1/endpoints/:id/secret': { tag: 'Outbound webhooks', summary: "Show an endpoint's signing secrets.", auth: 'admin' },
  'PATCH /v1/endpoints/:id': { tag: 'Outbound webhooks', summary: 'Change an endpoint (re-enable it with enabled: true).', auth: 'adminOrPortal' },
  'DELETE /v1/endpoints/:id': { tag: 'Outbound webhooks', summary: 'Delete an endpoint and its deliveries.', auth: 'adminOrPortal' },
  'POST /v1/endpoints/:id/rotate-secret': { tag: 'Outbound webhooks', summary: 'Rotate the signing secret, signing with both for a grace period.', auth: 'adminOrPortal' },
  'GET /v1/endpoints/:id/deliveries': { tag: 'Outbound webhooks', summary: "List an endpoint's deliveries, by status.", auth: 'adminOrPortal' },
  'POST /v1/endpoints/:id/recover': { tag: 'Outbound webhooks', summary: 'Re-enqueue failed deliveries created in a time range.', auth: 'adminOrPortal' },
  'GET /v1/deliveries/:id': { tag: 'Outbound webhooks', summary: 'Show one delivery.', auth: 'adminOrPortal' },
  'GET /v1/deliveries/:id/attempts': { tag: 'Outbound webhooks', summary: "A delivery's attempts.", auth: 'adminOrPortal' },
  'POST /v1/deliveries/:id/retry': { tag: 'Outbound webhooks', summary: 'Retry one failed delivery now.', auth: 'adminOrPortal' },
  'POST /v1/portal/sessions': { tag: 'Endpoint portal', summary: 'Open an endpoint-portal session for one tenant: a URL with a short-lived token.', auth: 'admin' },
  'GET /v1/portal/session': { tag: 'Endpoint portal', summary: "The session's tenant, allowed channels, expiry and branding.", auth: 'portal' },
  'GET /v1/portal/event-types': { tag: 'Endpoint portal', summary: 'The event types the session offers: its catalogue, the configured one, or the types seen on its channels.', auth: 'portal' },
  'GET /portal': { tag: 'Endpoint portal', summary: 'The endpoint portal (HTML), opened with `#token=` from a session URL; may be framed per portal.frameAncestors.', auth: 'none', text: 'text/html' },
  'GET /portal/': { tag: 'Endpoint portal', summary: 'Redirects to /portal.', auth: 'none' },
  'GET /v1/nodes': { tag: 'Cluster', summary: 'The live nodes with their heartbeats, connection counts and bus links.', auth: 'admin' },
  'GET /v1/channels/:channel/presence': { tag: 'Presence', summary: "The channel's presence set, cluster-wide (channels.presence)." },
  'GET /examples/webrtc': { tag: 'Examples', summary: 'Redirects to /examples/webrtc/ (examples.enabled only).', auth: 'none' },
  'GET /examples/webrtc/': { tag: 'Examples', summary: 'The WebRTC signalling example (HTML; examples.enabled only).', auth: 'none', text: 'text/html' },
  'GET /examples/webrtc/:file': { tag: 'Examples', summary: "The example's script (examples.enabled only).", auth: 'none' },
  'GET /examples/sdk/:pkg/*': { tag: 'Examples', summary: 'The built @herald/client and @herald/protocol modules the example imports.', auth: 'none' },
  'POST /examples/webrtc/token': { tag: 'Examples', summary: "A demo token for one example room's channel, for an hour (examples.enabled only).", auth: 'none' },
  'GET /v1/stats': { tag: 'Operations', summary: "The /metrics figures the console charts, as JSON: counters since start, gauges now.", auth: 'admin' },
  'GET /v1/channels': { tag: 'Events', summary: 'List channels by name with head seq, epoch, oldest kept seq and retention.', auth: 'admin' },
  'POST /v1/endpoints/:id/test': { tag: 'Outbound webhooks', summary: 'Send a test event to this endpoint alone (seq 0: not in the log).', auth: 'adminOrPortal' },
  'GET /v1/endpoints/:id/stats': { tag: 'Outbound webhooks', summary: "An endpoint's recent success rate over its latest deliveries.", auth: 'adminOrPortal' },
  'GET /v1/sources/:name/ingests': { tag: 'Inbound webhooks', summary: "A source's latest ingest requests, refusals with their reason.", auth: 'admin' },
  'GET /console': { tag: 'Console', summary: 'The web console (HTML); sign in with the admin key.', auth: 'none', text: 'text/html' },
  'GET /console/': { tag: 'Console', summary: 'Redirects to /console.', auth: 'none' },
  'GET /ui/*': { tag: 'Console', summary: 'Scripts and styles of the pages Herald serves (packages/server/ui).', auth: 'none' },
  'GET /ui/vendor/:file': { tag: 'Console', summary: 'The UI libraries (Preact, htm, uPlot) from node_modules.', auth: 'none' },
};

const SECURITY: Record<Auth, Array<Record<string, string[]>>> = {
  none: [],
  admin: [{ apiKey: [] }, { tokenQuery: [] }],
  any: [{ apiKey: [] }, { subscriberToken: [] }, { tokenQuery: [] }],
  adminOrPortal: [{ apiKey: [] }, { portalToken: [] }, { tokenQuery: [] }],
  portal: [{ portalToken: [] }, { tokenQuery: [] }],
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

/** The outbound endpoint answers, whose routes have no response schema (see ENDPOINT_INFO_SCHEMA). */
function describeEndpointAnswers(doc: Json): void {
  doc.components.schemas.Endpoint = ENDPOINT_INFO_SCHEMA;
  const endpoint = { $ref: '#/components/schemas/Endpoint' };
  const json = (description: string, schema: Json) => ({ description, content: { 'application/json': { schema } } });
  const answers: Array<[string, string, string, Json]> = [
    ['/v1/endpoints', 'get', '200', json('The endpoints.', { type: 'object', required: ['endpoints'], properties: { endpoints: { type: 'array', items: endpoint } } })],
    ['/v1/endpoints', 'post', '201', json('The new endpoint, with its secret (shown this once).', { allOf: [endpoint, { type: 'object', required: ['secret'], properties: { secret: { type: 'string' } } }] })],
    ['/v1/endpoints/{id}', 'get', '200', json('The endpoint.', endpoint)],
    ['/v1/endpoints/{id}', 'patch', '200', json('The endpoint as changed.', endpoint)],
  ];
  for (const [path, method, status, answer] of answers) {
    const operation = doc.paths?.[path]?.[method];
    if (!operation) continue;
    operation.responses ??= {};
    if (status !== '200') delete operation.responses['200'];
    operation.responses[status] = answer;
  }
}

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
  describeEndpointAnswers(doc);

  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const [method, operation] of Object.entries<Json>(item)) {
      if (typeof operation !== 'object' || !operation.responses) continue;
      const url = path.replace(/\{([^}]+)\}/g, ':$1');
      const meta = operationOf(method.toUpperCase(), url);
      operation.responses['4XX'] ??= errorResponse('A client error: `{error: {code, message, details?}}`.');
      operation.responses['5XX'] ??= errorResponse('A server error, or not ready (503, with `Retry-After` when retrying helps).');
      /** Adds an optional request header to the operation's parameters. */
      const header = (name: string, description: string, schema: Json) =>
        (operation.parameters = [...(operation.parameters ?? []), { name, in: 'header', required: false, description, schema }]);
      if (meta.traced) {
        header(
          'traceparent',
          'W3C trace context; kept as `meta.traceparent` and sent on every outbound delivery of the event. An invalid value is ignored.',
          { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}' },
        );
      }
      if (meta.idempotent) {
        header(
          'Idempotency-Key',
          'The same key again, from the same credential, answers 200 with what the first request wrote and appends nothing. Kept for the longer of retention.maxAge and ingest.dedupeWindow.',
          { type: 'string', minLength: 1, maxLength: IDEMPOTENCY_KEY_MAX },
        );
      }
      if (meta.sse) {
        header('Last-Event-ID', 'Where a reconnecting EventSource resumes: the last event id it saw. It wins over a position in the query.', { type: 'string' });
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
        '4XX': errorResponse(
          'Refused before the upgrade: 403 for an Origin not in cors.origins, 404 for another path, 426 (with `Sec-WebSocket-Version: 13`) ' +
            'for another WebSocket version, 426 (with `Upgrade: websocket`) for a plain GET that asks for no upgrade, 405 for a method ' +
            'other than GET, 400 for another malformed handshake.',
        ),
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
          portalToken: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: "An endpoint-portal session token (POST /v1/portal/sessions): its tenant's endpoints and deliveries only.",
          },
          tokenQuery: { type: 'apiKey', in: 'query', name: 'token', description: 'Any credential as `?token=` (EventSource and browser WebSockets cannot set headers).' },
        },
      },
      security: SECURITY.any,
    },
    transform: ({ schema, url, route }) => {
      // A route for GET and HEAD together (@fastify/static's) is described by its GET.
      const methods = (Array.isArray(route.method) ? route.method : [route.method]) as string[];
      const method = methods.includes('GET') ? 'GET' : methods[0]!;
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

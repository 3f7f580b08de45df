import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler, RouteOptions } from 'fastify';
import { HeraldError } from '@herald/protocol';

type Schema = { type?: unknown; properties?: Record<string, Schema> } | undefined;

/** The top-level properties of an object schema typed as a number or an integer: every numeric field Herald has. */
function numericFields(schema: unknown): string[] {
  const properties = (schema as Schema)?.properties ?? {};
  return Object.entries(properties).flatMap(([name, property]) => {
    const types = ([] as unknown[]).concat(property?.type);
    return types.includes('number') || types.includes('integer') ? [name] : [];
  });
}

function assertFinite(values: Record<string, unknown> | undefined, fields: readonly string[], where: string): void {
  for (const name of fields) {
    const value = values?.[name];
    if (typeof value === 'number' && !Number.isFinite(value)) throw new HeraldError('bad_request', `${where}/${name} must be a finite number.`);
  }
}

/**
 * Ajv coerces a string such as `1e400`, `Infinity` or `-Infinity` to a non-finite number and then skips the field's
 * `minimum` and `maximum` (a JSON number `1e400` fails its type instead), so `?limit=Infinity` on a poll reached the
 * store (a 500 after the long poll had parked its wait), and `"ttl": "1e400"` reached the token signer. So a route
 * whose querystring or body schema has numeric fields checks them once validated. Added as each route is
 * registered, to those routes only: the publish routes have no numeric field and pay nothing.
 */
export function installFiniteNumbers(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const query = numericFields(route.schema?.querystring ?? (route.schema as { query?: unknown } | undefined)?.query);
    const body = numericFields(route.schema?.body);
    if (query.length === 0 && body.length === 0) return;
    const check: preHandlerAsyncHookHandler = async (request: FastifyRequest) => {
      assertFinite(request.query as Record<string, unknown> | undefined, query, 'querystring');
      assertFinite(request.body as Record<string, unknown> | undefined, body, 'body');
    };
    const own = route.preHandler === undefined ? [] : ([] as unknown[]).concat(route.preHandler);
    route.preHandler = [check, ...own] as RouteOptions['preHandler'];
  });
}

import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { RouteOptions } from 'fastify';

/**
 * The methods each path is served for, so that a request whose path exists under other methods gets `405` with
 * `Allow` (RFC 9110 §15.5.6) rather than `404`. Fastify answers both with its not-found handler and cannot say
 * which it was (its `findRoute` matches route patterns, not request paths), so the routes are kept a second time,
 * as Fastify registers them, in a router of the same kind (find-my-way, Fastify's own) with the same options, and
 * it is asked only when Fastify found nothing. OPTIONS is not kept: @fastify/cors has a route for it on every
 * path, and a path served for any other method is served for OPTIONS too (errors.ts answers it with `Allow`).
 */
export class RouteMethods {
  private readonly router: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;
  /** Every method some route is served for, in the order first seen: what `allowed` asks the router about. */
  private readonly methods = new Set<HTTPMethod>();

  constructor(options: { maxParamLength: number }) {
    this.router = FindMyWay({ maxParamLength: options.maxParamLength });
  }

  /** For Fastify's `onRoute` hook. */
  readonly add = (route: RouteOptions): void => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]) as HTTPMethod[];
    for (const method of methods) {
      if (method === 'OPTIONS') continue;
      // A route Fastify took twice under constraints (none in Herald) is the same path and method here.
      if (this.router.hasRoute(method, route.url)) continue;
      this.router.on(method, route.url, () => {});
      this.methods.add(method);
    }
  };

  /** The methods `path` (no query) is served for, OPTIONS last; empty when it is served for none. */
  allowed(path: string): HTTPMethod[] {
    const served = [...this.methods].filter((method) => this.router.find(method, path) !== null);
    return served.length === 0 ? served : [...served, 'OPTIONS'];
  }
}

import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';

/** Where in `value` a `__proto__` key, or a `constructor` object with a `prototype` key, sits; undefined if nowhere. */
function poisonedPath(value: unknown, path: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = poisonedPath(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    const child = (value as Record<string, unknown>)[key];
    const at = `${path}.${key}`;
    if (key === '__proto__') return at;
    if (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype')) return `${at}.prototype`;
    const found = poisonedPath(child, at);
    if (found) return found;
  }
  return undefined;
}

/**
 * Parses a JSON request body. Unlike Fastify's default parser, which answers every refusal with the same
 * "not valid JSON", it says what is wrong: the syntax error, or the prototype-poisoning key and where it is.
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new HeraldError('invalid_json', 'The body is empty: send a JSON value.');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HeraldError('invalid_json', `The body is not valid JSON: ${(error as Error).message}`);
  }
  // Only a body that spells one of the names (or escapes characters, which could spell them) needs the walk.
  if (/__proto__|constructor|\\u/.test(text)) {
    const at = poisonedPath(value, 'body');
    if (at) {
      throw new HeraldError(
        'bad_request',
        `The body has a key ${at.endsWith('.prototype') ? '"constructor.prototype"' : '"__proto__"'} at ${at}: such keys are refused because they can poison object prototypes. Rename the key.`,
      );
    }
  }
  return value;
}

export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

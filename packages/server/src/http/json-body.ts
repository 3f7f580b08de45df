import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';

/** A container being walked: its keys (objects) or none (arrays), the next one to look at, and its path. */
interface WalkFrame {
  node: object;
  keys: string[] | undefined;
  next: number;
  path: string;
}

const frameOf = (node: object, path: string): WalkFrame => ({ node, keys: Array.isArray(node) ? undefined : Object.keys(node), next: 0, path });

/**
 * Where in `value` a `__proto__` key, or a `constructor` object with a `prototype` key, sits (the first in document
 * order); undefined if nowhere. A walk with a stack of its own, not recursion: JSON.parse takes bodies nested far
 * deeper than the call stack goes (the depth limit is checked later, on the parsed value).
 */
function poisonedPath(value: unknown, root: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const stack = [frameOf(value, root)];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const keys = top.keys;
    if (top.next >= (keys ?? (top.node as unknown[])).length) {
      stack.pop();
      continue;
    }
    const i = top.next++;
    let child: unknown;
    let at: string;
    if (keys) {
      const key = keys[i]!;
      child = (top.node as Record<string, unknown>)[key];
      at = `${top.path}.${key}`;
      if (key === '__proto__') return at;
      if (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype')) return `${at}.prototype`;
    } else {
      child = (top.node as unknown[])[i];
      at = `${top.path}[${i}]`;
    }
    if (typeof child === 'object' && child !== null) stack.push(frameOf(child, at));
  }
  return undefined;
}

/** A path as an error message quotes it: its end, if it is long. */
const PATH_SHOWN = 200;
const shownPath = (path: string) => (path.length > PATH_SHOWN ? `…${path.slice(-PATH_SHOWN)}` : path);

/**
 * The deepest nesting any body or frame may have: the most `limits.jsonDepth` allows (1000), with room for the
 * envelope around event data (a batch's `{"events":[{"data":…}]}`). The parsed value's own check says precisely
 * what the configured limit is; this one only keeps text no setting could accept from being parsed at all.
 */
export const NESTING_CEILING = 1000 + 8;

/**
 * Whether JSON text nests arrays and objects deeper than `max`, read from the text before it is parsed: JSON.parse
 * takes a megabyte of `[` in about three times what it takes a flat megabyte, building every level, and the walks
 * after it (poisoned keys, depth) go down every one. This stops at the first level past `max`. Written by hand, as
 * no JSON library offers a depth check that does not build the value. Text shorter than two characters a level
 * cannot be that deep (valid JSON closes what it opens), so the usual small body is not scanned.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  if (text.length <= 2 * max + 1) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character, a quote included
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Parses JSON text (a body or a frame), refusing it unparsed when it nests deeper than any setting allows. Text that
 * is not JSON is `invalid_json`, with the message `invalid` makes of the parser's error.
 */
export function parseJsonText(text: string, what: 'body' | 'frame', invalid: (error: Error) => string): unknown {
  if (nestsDeeperThan(text, NESTING_CEILING)) {
    throw new HeraldError('payload_too_deep', `The ${what} nests arrays and objects more than ${NESTING_CEILING} levels deep.`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HeraldError('invalid_json', invalid(error as Error));
  }
}

/**
 * Parses a JSON request body. Unlike Fastify's default parser, which answers every refusal with the same
 * "not valid JSON", it says what is wrong: the syntax error, or the prototype-poisoning key and where it is.
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new HeraldError('invalid_json', 'The body is empty: send a JSON value.');
  const value = parseJsonText(text, 'body', (error) => `The body is not valid JSON: ${error.message}`);
  refusePoisonedKeys(text, value, 'body');
  return value;
}

/**
 * Refuses JSON (`value`, parsed from `text`) that holds a prototype-poisoning key: a request body, or a WebSocket
 * frame, so a publish is refused the same way over either.
 */
export function refusePoisonedKeys(text: string, value: unknown, what: 'body' | 'frame'): void {
  // Only text that spells one of the names (or escapes characters, which could spell them) needs the walk.
  if (!/__proto__|constructor|\\u/.test(text)) return;
  const at = poisonedPath(value, what);
  if (at) {
    throw new HeraldError(
      'bad_request',
      `The ${what} has a key ${at.endsWith('.prototype') ? '"constructor.prototype"' : '"__proto__"'} at ${shownPath(at)}: such keys are refused because they can poison object prototypes. Rename the key.`,
    );
  }
}

/** Decodes strictly: a byte sequence that is not UTF-8 throws, where the default decoder would put U+FFFD in its place. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A JSON body's text. JSON between systems is UTF-8 (RFC 8259 §8.1), and application/json defines no charset
 * parameter, so a `charset=` in the Content-Type changes nothing. Bytes that are not UTF-8 are refused: decoded
 * leniently (as Fastify's `parseAs: 'string'` does), `{"data":"caf\xe9"}` sent as Latin-1 was stored as `"caf�"`,
 * silently, while the same bytes in a WebSocket text frame close the socket with 1007. A byte order mark is kept,
 * so JSON.parse refuses it as before.
 */
export function decodeJsonBody(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new HeraldError('invalid_json', 'The body is not valid JSON: it is not UTF-8 (JSON is always UTF-8, whatever the charset says).');
  }
}

export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    // A route that takes no body (DELETE, retry…), or whose body is optional (rotate-secret, test), takes an empty one
    // whatever its Content-Type: some HTTP clients send `application/json` on every request. A route that needs a
    // body still says that the body is empty.
    // A request no route answers (404), and an OPTIONS request (answered by CORS without reading a body), has its
    // body read and dropped unparsed: no one without a credential may have the server parse a body for nothing.
    if (request.is404 || request.method === 'OPTIONS') return done(null, undefined);
    if ((body as Buffer).length === 0) {
      const schema = request.routeOptions.schema?.body as { type?: unknown } | undefined;
      if (schema === undefined) return done(null, undefined);
      if (Array.isArray(schema.type) && schema.type.includes('null')) return done(null, null);
    }
    try {
      done(null, parseJsonBody(decodeJsonBody(body as Buffer)));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

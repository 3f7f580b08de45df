import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { TSchema } from '@sinclair/typebox';
import { ErrorCodes } from '@herald/protocol';
import { ConfigSchema } from './schema.js';

const README = new URL('../../../../README.md', import.meta.url);

/** Every setting's path (`limits.bodyBytes`), down to the leaves; a list of objects (`retention.rules`) is one. */
function settingPaths(schema: TSchema, path: string[] = []): string[] {
  const properties = (schema as { properties?: Record<string, TSchema> }).properties;
  if (schema.type !== 'object' || properties === undefined) return [path.join('.')];
  return Object.entries(properties).flatMap(([key, child]) => settingPaths(child, [...path, key]));
}

it('the README names every setting of the config schema', () => {
  const readme = readFileSync(README, 'utf8');
  const paths = settingPaths(ConfigSchema);
  assert.ok(paths.length > 60 && paths.includes('limits.bodyBytes') && paths.includes('portal.branding.name'), paths.join(', '));
  // In code, alone (`limits.bodyBytes`) or with a value (`store.synchronous: "normal"`).
  const named = (path: string) => readme.includes(`\`${path}\``) || readme.includes(`\`${path}:`);
  assert.deepEqual(paths.filter((path) => !named(path)), []);
});

it("the README's table of error codes lists every code of the catalogue, with its status", () => {
  const readme = readFileSync(README, 'utf8');
  const rows = new Map([...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
  const codes = Object.entries(ErrorCodes);
  assert.ok(codes.length > 25);
  assert.deepEqual(
    codes.filter(([code, { status }]) => rows.get(code) !== status).map(([code]) => code),
    [],
  );
});

/** The commands that bring what a transport has told its server into line with what its callers want. */
export interface TopicChange {
  missing: string[];
  unwanted: string[];
}

/**
 * What a transport must send so the topics it has told its server (`told`) are the ones `wanted`, with `told`
 * updated as if it had sent them; undefined when they agree. Called on the way up, and again until it returns
 * undefined, so topics wanted or dropped while the last commands were on the wire are sent too. `keep`: a topic of
 * the transport's own (Redis's probe), which no caller wants and which is never unsubscribed.
 */
export function squareTopics(wanted: ReadonlySet<string>, told: Set<string>, keep?: string): TopicChange | undefined {
  const missing = [...wanted].filter((name) => !told.has(name));
  const unwanted = [...told].filter((name) => name !== keep && !wanted.has(name));
  if (missing.length === 0 && unwanted.length === 0) return undefined;
  for (const name of missing) told.add(name);
  for (const name of unwanted) told.delete(name);
  return { missing, unwanted };
}

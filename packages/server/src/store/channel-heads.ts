/**
 * SQL shared by the SQLite and PostgreSQL delivery stores for endpoints with
 * `ordering: "channel"`: the first pending delivery of each channel (its
 * "head"), the only one of that channel that may be sent.
 *
 * The channels with pending deliveries are walked one index seek at a time
 * (a loose index scan over `deliveries_pending_by_channel`, the partial index
 * of pending rows on (endpoint_id, channel, seq) that both schemas create),
 * and each head is one more seek, so the cost follows the number of channels,
 * not the backlog waiting behind a failing head. Both engines run it as
 * written; `endpoint` is the placeholder of the endpoint id (`@endpoint` in
 * SQLite, `$1` in PostgreSQL); `select` picks from the head rows, `d`.
 */
export function channelHeadsQuery(endpoint: string, select = 'd.*'): string {
  const pending = `FROM deliveries WHERE endpoint_id = ${endpoint} AND status = 'pending'`;
  return `WITH RECURSIVE pending_channels(channel) AS (
            SELECT (SELECT min(channel) ${pending})
            UNION ALL
            SELECT (SELECT min(channel) ${pending} AND channel > p.channel) FROM pending_channels p WHERE p.channel IS NOT NULL
          )
          SELECT ${select} FROM pending_channels c
          JOIN deliveries d ON d.n = (SELECT n ${pending} AND channel = c.channel ORDER BY seq LIMIT 1)`;
}


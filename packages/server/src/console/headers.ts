/** Who may put a page in a frame: nobody (the console), or the listed origins (the portal, in a platform's page). */
export type FrameAncestors = 'none' | readonly string[];

export interface PageSecurity {
  frameAncestors: FrameAncestors;
  /** Image sources beyond Herald itself (the portal shows a platform's logo from its own host). */
  images?: readonly string[];
}

/** A source in a CSP list: one token, so a configured value cannot end the directive or add another. */
function assertSource(source: string): string {
  if (!/^[^\s;,]+$/.test(source)) throw new Error(`Not a CSP source expression: ${JSON.stringify(source)}.`);
  return source;
}

/**
 * Headers for an HTML page Herald serves. The CSP allows scripts, styles and connections (fetch,
 * EventSource, WebSocket) from Herald's own origin only: no inline script, no eval, no CDN. `'self'`
 * covers `ws:`/`wss:` to the same host in CSP Level 3, which every current browser implements.
 */
export function pageHeaders(security: PageSecurity): Record<string, string> {
  const listed = security.frameAncestors === 'none' ? [] : security.frameAncestors.map(assertSource);
  const ancestors = listed.length === 0 ? "'none'" : listed.join(' ');
  security.images?.forEach(assertSource);
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data:${security.images?.length ? ` ${security.images.join(' ')}` : ''}`,
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${ancestors}`,
  ].join('; ');
  return {
    'content-security-policy': csp,
    // For browsers that predate frame-ancestors; there is no X-Frame-Options value for a list of origins.
    ...(ancestors === "'none'" ? { 'x-frame-options': 'DENY' } : {}),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
    // The page itself is tiny and names its scripts: always fetch it fresh so an upgrade takes effect.
    'cache-control': 'no-cache',
  };
}

/** Headers for the scripts and styles under `/ui/`: never sniffed as another type, revalidated by ETag. */
export const ASSET_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-cache',
};

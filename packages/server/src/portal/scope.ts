import { HeraldError } from '@herald/protocol';
import { isValidPattern } from '../auth/patterns.js';

/**
 * A tenant is the platform's name for one of its customers: channel-name
 * characters, so a channel template like `{tenant}:*` always yields a valid
 * pattern, but never `:`. With a `:` tenant `acme`'s `acme:*` would cover
 * every channel of a tenant `acme:eu` (`acme:eu:*`), its events and its types.
 */
export const TENANT_REGEX = '^[A-Za-z0-9_.-]{1,128}$';
const TENANT = new RegExp(TENANT_REGEX);

export const isValidTenant = (value: unknown): value is string => typeof value === 'string' && TENANT.test(value);

/** Bounds on what one session carries; it all travels inside the token, which travels in every request's headers. */
export const PORTAL_LIMITS = {
  channels: 20,
  eventTypes: 100,
  eventTypeLength: 128,
  brandName: 64,
  logoUrl: 1024,
  /** A token past this is refused at minting: keep big catalogues in `portal.eventTypes` instead. */
  tokenBytes: 8192,
  /** Test events one tenant may send a minute (on each node), and the size of the `data` of one, as JSON: each is a stored delivery. */
  testEventsPerMinute: 30,
  testEventBytes: 16_384,
} as const;

/**
 * A `portal.channels` template: pattern characters and `{tenant}`, which must end the pattern or be followed by
 * `:` (the one character a tenant never has), so no tenant's channels can cover another's: `{tenant}*` would
 * give tenant `acme` the channels of `acmecorp`, and `{tenant}.*` those of `acme.eu`.
 */
export const CHANNEL_TEMPLATE_REGEX = '^(?:[A-Za-z0-9_.:*-]|\\{tenant\\}(?=:|$))+$';

/** `#rgb` or `#rrggbb`: nothing else reaches a style attribute. */
export const ACCENT_COLOR_REGEX = '^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$';
/** An absolute http(s) URL or a path on this server; never `javascript:`, `data:` or a scheme-relative `//host`. */
export const LOGO_URL_REGEX = '^(?:https?://[^\\s"\'<>]+|/(?!/)[^\\s"\'<>]*)$';
/** Printable text with no control characters. */
export const BRAND_NAME_REGEX = '^[^\\u0000-\\u001f\\u007f]+$';

export interface Branding {
  name?: string | undefined;
  logoUrl?: string | undefined;
  accentColor?: string | undefined;
}

/** What one portal session may do; carried by its token. */
export interface PortalScope {
  tenant: string;
  /** Channel patterns the tenant's endpoints may listen on. */
  channels: string[];
  /** The event-type catalogue the platform set for this session; absent: the config's, or the types seen. */
  eventTypes?: string[] | undefined;
  /** Overrides of `portal.branding` for this session. */
  branding?: Branding | undefined;
}

/** JSON schema of a branding object, for the session request and for the config. */
export const brandingSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: PORTAL_LIMITS.brandName, pattern: BRAND_NAME_REGEX },
    logoUrl: { type: 'string', minLength: 1, maxLength: PORTAL_LIMITS.logoUrl, pattern: LOGO_URL_REGEX },
    accentColor: { type: 'string', pattern: ACCENT_COLOR_REGEX },
  },
} as const;

export const eventTypeListSchema = {
  type: 'array',
  maxItems: PORTAL_LIMITS.eventTypes,
  uniqueItems: true,
  items: { type: 'string', minLength: 1, maxLength: PORTAL_LIMITS.eventTypeLength },
} as const;

const isStringList = (value: unknown, max: number, valid: (s: string) => boolean): value is string[] =>
  Array.isArray(value) && value.length <= max && value.every((v) => typeof v === 'string' && valid(v));

function brandingOf(value: unknown): Branding | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('branding');
  const { name, logoUrl, accentColor, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw invalid('branding');
  const text = (v: unknown, max: number, pattern: string) => v === undefined || (typeof v === 'string' && v.length <= max && new RegExp(pattern).test(v));
  if (!text(name, PORTAL_LIMITS.brandName, BRAND_NAME_REGEX) || !text(logoUrl, PORTAL_LIMITS.logoUrl, LOGO_URL_REGEX) || !text(accentColor, 7, ACCENT_COLOR_REGEX)) {
    throw invalid('branding');
  }
  return { name: name as string | undefined, logoUrl: logoUrl as string | undefined, accentColor: accentColor as string | undefined };
}

const invalid = (what: string) => new HeraldError('unauthorized', `The portal token's \`${what}\` claim is not valid.`);

/**
 * The `portal` claim of a token, checked as strictly as the session request
 * that minted it: a token minted offline with the token secret must not
 * carry more than the API would have put in it.
 */
export function portalScopeFromClaim(claim: unknown): PortalScope {
  if (typeof claim !== 'object' || claim === null || Array.isArray(claim)) throw invalid('portal');
  const { tenant, channels, eventTypes, branding } = claim as Record<string, unknown>;
  if (!isValidTenant(tenant)) throw invalid('portal.tenant');
  if (!isStringList(channels, PORTAL_LIMITS.channels, isValidPattern)) throw invalid('portal.channels');
  if (eventTypes !== undefined && !isStringList(eventTypes, PORTAL_LIMITS.eventTypes, (t) => t.length > 0 && t.length <= PORTAL_LIMITS.eventTypeLength)) {
    throw invalid('portal.eventTypes');
  }
  const scope: PortalScope = { tenant, channels };
  if (eventTypes !== undefined) scope.eventTypes = eventTypes;
  const brand = brandingOf(branding);
  if (brand) scope.branding = brand;
  return scope;
}

/** The claim as it goes into a token: no undefined fields. */
export function portalClaim(scope: PortalScope): Record<string, unknown> {
  const claim: Record<string, unknown> = { tenant: scope.tenant, channels: scope.channels };
  if (scope.eventTypes !== undefined) claim.eventTypes = scope.eventTypes;
  if (scope.branding !== undefined) claim.branding = Object.fromEntries(Object.entries(scope.branding).filter(([, v]) => v !== undefined));
  return claim;
}

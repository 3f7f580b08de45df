export const SCOPES = ['publish', 'subscribe', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** An API key as the admin API shows it; the secret itself is shown once, at creation. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  scopes: Scope[];
  /** Channel patterns; `*` matches any run of characters. */
  channels: string[];
  /** The first characters of the key, to tell keys apart. */
  prefix: string;
  createdAt: string;
  revokedAt?: string;
}

export interface CreatedApiKey extends ApiKeyInfo {
  key: string;
}

/** Claims of a subscriber token (JWT, HS256). */
export interface TokenClaims {
  sub: string;
  exp: number;
  channels: string[];
  publish?: string[];
}

export const PROVIDERS = ['stripe', 'github', 'shopify', 'slack', 'standard'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** An inbound webhook source as the admin API shows it: secrets are never echoed back. */
export interface SourceInfo {
  name: string;
  provider: Provider;
  channel: string;
  /** Seconds of timestamp tolerance, for providers that sign one. */
  tolerance: number;
  /**
   * The active secrets, each as a fingerprint (`sha256:` + the first 12 hex digits of the SHA-256 of the secret,
   * never any character of the secret), and when the older ones stop being accepted.
   */
  secrets: Array<{ fingerprint: string; expiresAt?: string }>;
  createdAt: string;
  stats: { accepted: number; duplicates: number; refused: number };
}

export const DELIVERY_SCHEMES = ['standard', 'stripe', 'github'] as const;
export type DeliveryScheme = (typeof DELIVERY_SCHEMES)[number];
/**
 * `unordered`: deliveries go out in parallel, retries overtake. `channel`: each channel's events go out one at a
 * time in seq order; the next waits until the previous one succeeded or failed for good (a dead letter).
 */
export const ENDPOINT_ORDERINGS = ['unordered', 'channel'] as const;
export type EndpointOrdering = (typeof ENDPOINT_ORDERINGS)[number];
export const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** An outbound webhook endpoint as the admin API shows it. */
export interface EndpointInfo {
  id: string;
  url: string;
  channels: string[];
  types: string[];
  scheme: DeliveryScheme;
  headers: Record<string, string>;
  rateLimit?: number;
  maxConcurrency: number;
  ordering: EndpointOrdering;
  enabled: boolean;
  description?: string;
  /** Why the endpoint was disabled, when Herald disabled it. */
  disabledReason?: string;
  /** The platform's customer this endpoint belongs to (the endpoint portal shows a tenant its own endpoints only). */
  tenant?: string;
  createdAt: string;
}

export interface DeliveryInfo {
  id: string;
  endpointId: string;
  eventId: string;
  channel: string;
  seq: number;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt?: string;
  lastStatusCode?: number;
  lastError?: string;
  createdAt: string;
}

export interface AttemptInfo {
  at: string;
  statusCode?: number;
  durationMs: number;
  error?: string;
  /** The first 1 KiB of the response body. */
  responseBody?: string;
}

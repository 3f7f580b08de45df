import type { HeadersInput } from './bytes.js';

export type Scheme = 'standard' | 'stripe' | 'github' | 'shopify' | 'slack';

export interface SchemeSignInput {
  secrets: string[];
  id: string;
  /** Unix seconds. */
  timestamp: number;
  body: Buffer;
}

export interface SchemeVerifyInput {
  secrets: string[];
  headers: HeadersInput;
  body: Buffer;
  /** Seconds either side of `now`. */
  tolerance: number;
  /** Unix seconds. */
  now: number;
}

/** What a verified request says about itself; `id` and `timestamp` where the scheme carries them. */
export interface Verified {
  id?: string;
  timestamp?: number;
}

export interface SchemeImpl {
  sign(input: SchemeSignInput): Record<string, string>;
  verify(input: SchemeVerifyInput): Verified;
}

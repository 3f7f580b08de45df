import { checkTimestamp, decodeSignature, hmacSha256, requireHeader, sameBytes } from '../bytes.js';
import { fail } from '../errors.js';
import type { SchemeImpl } from '../types.js';

/** Stripe: `Stripe-Signature: t=…,v1=…`, HMAC-SHA256 of `{t}.{body}` keyed with the whole secret string. */
export const stripe: SchemeImpl = {
  sign({ secrets, timestamp, body }) {
    const v1 = secrets.map((secret) => `v1=${hmacSha256(secret, `${timestamp}.`, body).toString('hex')}`);
    return { 'stripe-signature': [`t=${timestamp}`, ...v1].join(',') };
  },

  verify({ secrets, headers, body, tolerance, now }) {
    const value = requireHeader(headers, 'stripe-signature');
    let t: string | undefined;
    const v1: string[] = [];
    for (const item of value.split(',')) {
      const eq = item.indexOf('=');
      if (eq < 0) continue;
      const key = item.slice(0, eq).trim();
      const val = item.slice(eq + 1).trim();
      if (key === 't') t = val;
      else if (key === 'v1') v1.push(val);
      // Other schemes (v0, and any Stripe adds later) are ignored, as Stripe's own libraries do.
    }
    if (t === undefined || v1.length === 0) fail('malformed_header', 'Stripe-Signature needs t= and at least one v1=.');
    const timestamp = checkTimestamp(t, now, tolerance);
    for (const secret of secrets) {
      const expected = hmacSha256(secret, `${t}.`, body);
      for (const sig of v1) if (sameBytes(expected, decodeSignature(sig, 'hex'))) return { timestamp };
    }
    return fail('no_matching_signature', 'No v1 signature matched any of the secrets.');
  },
};

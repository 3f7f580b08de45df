import { checkTimestamp, decodeSignature, hmacSha256, requireHeader, sameBytes } from '../bytes.js';
import { fail } from '../errors.js';
import type { SchemeImpl } from '../types.js';

/** Slack: `X-Slack-Signature: v0=<hex>` of `v0:{X-Slack-Request-Timestamp}:{body}`. */
export const slack: SchemeImpl = {
  sign({ secrets, timestamp, body }) {
    return {
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': `v0=${hmacSha256(secrets[0]!, `v0:${timestamp}:`, body).toString('hex')}`,
    };
  },

  verify({ secrets, headers, body, tolerance, now }) {
    const timestampText = requireHeader(headers, 'x-slack-request-timestamp');
    const value = requireHeader(headers, 'x-slack-signature').trim();
    if (!value.startsWith('v0=')) fail('malformed_header', 'X-Slack-Signature must start with "v0=".');
    const timestamp = checkTimestamp(timestampText, now, tolerance);
    const presented = decodeSignature(value.slice(3), 'hex');
    for (const secret of secrets) {
      if (sameBytes(hmacSha256(secret, `v0:${timestampText}:`, body), presented)) return { timestamp };
    }
    return fail('no_matching_signature', 'The signature matched none of the secrets.');
  },
};

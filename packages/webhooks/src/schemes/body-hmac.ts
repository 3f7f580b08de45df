import { decodeSignature, header, hmacSha256, requireHeader, sameBytes } from '../bytes.js';
import { fail } from '../errors.js';
import type { SchemeImpl } from '../types.js';

interface BodyHmacScheme {
  signatureHeader: string;
  /** `sha256=` for GitHub; none for Shopify. */
  prefix: string;
  encoding: 'hex' | 'base64';
  /** The delivery id header, returned as `id`. */
  idHeader: string;
}

/** Schemes that sign the raw body alone, with no timestamp: GitHub and Shopify. */
function bodyHmac({ signatureHeader, prefix, encoding, idHeader }: BodyHmacScheme): SchemeImpl {
  return {
    sign({ secrets, id, body }) {
      // These providers send one signature; the first secret is the current one. The delivery id goes with it, as
      // the provider sends it: receivers dedupe by it, and GitHub's libraries refuse a delivery without it.
      return { [signatureHeader]: prefix + hmacSha256(secrets[0]!, body).toString(encoding), [idHeader]: id };
    },
    verify({ secrets, headers, body }) {
      const value = requireHeader(headers, signatureHeader).trim();
      if (!value.startsWith(prefix)) fail('malformed_header', `${signatureHeader} must start with ${JSON.stringify(prefix)}.`);
      const presented = decodeSignature(value.slice(prefix.length), encoding);
      for (const secret of secrets) {
        if (sameBytes(hmacSha256(secret, body), presented)) {
          const id = header(headers, idHeader);
          return id === undefined ? {} : { id };
        }
      }
      return fail('no_matching_signature', 'The signature matched none of the secrets.');
    },
  };
}

export const github = bodyHmac({ signatureHeader: 'x-hub-signature-256', prefix: 'sha256=', encoding: 'hex', idHeader: 'x-github-delivery' });
export const shopify = bodyHmac({ signatureHeader: 'x-shopify-hmac-sha256', prefix: '', encoding: 'base64', idHeader: 'x-shopify-webhook-id' });

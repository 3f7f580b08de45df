export const VerificationErrorCodes = [
  'missing_header',
  'malformed_header',
  'timestamp_outside_tolerance',
  'no_matching_signature',
  'invalid_secret',
] as const;

export type VerificationErrorCode = (typeof VerificationErrorCodes)[number];

/** Why a webhook was refused; `code` is stable, the message is for people. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';

  constructor(
    readonly code: VerificationErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function fail(code: VerificationErrorCode, message: string): never {
  throw new WebhookVerificationError(code, message);
}

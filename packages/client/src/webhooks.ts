/**
 * For Node receivers of Herald's (or any provider's) webhooks. A separate
 * entry point because it needs node:crypto, which browser bundles must not pull in.
 */
export { verifyWebhook, verify, sign, WebhookVerificationError, type Scheme, type VerifyOptions, type VerifyResult } from '@herald/webhooks';

/**
 * A start-up step that failed for a reason the operator can act on (a corrupt database, a port in use): the
 * CLI prints the message as one line and exits 1, without a stack trace.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

const GENERATED_ADMIN_KEY = Symbol('herald.generatedAdminKey');

/**
 * Marks a failed start's error with the admin key that start generated. Its hash is already in the store, so no
 * later start prints it: the CLI prints it with the failure instead (`herald admin-key reset` would be the only
 * way back in otherwise).
 */
export function withGeneratedAdminKey(error: unknown, key: string | undefined): unknown {
  if (key !== undefined && typeof error === 'object' && error !== null) Object.defineProperty(error, GENERATED_ADMIN_KEY, { value: key });
  return error;
}

export function generatedAdminKeyOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as { [GENERATED_ADMIN_KEY]?: string })[GENERATED_ADMIN_KEY] : undefined;
}

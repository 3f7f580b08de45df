/**
 * A start-up step that failed for a reason the operator can act on (a corrupt database, a port in use): the
 * CLI prints the message as one line and exits 1, without a stack trace.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

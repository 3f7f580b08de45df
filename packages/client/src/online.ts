/**
 * Calls `onOnline` on each `online` event of a browser page or worker, and returns what stops it. Elsewhere (Node:
 * no global `addEventListener`, no `navigator.onLine`) there is no such event, and nothing is listened to.
 */
export function watchOnline(onOnline: () => void): () => void {
  const scope = globalThis as { addEventListener?: unknown; navigator?: { onLine?: unknown } };
  if (typeof scope.addEventListener !== 'function' || typeof scope.navigator?.onLine !== 'boolean') return () => {};
  // A listener of its own: each client removes exactly the one it added.
  const listener = () => onOnline();
  globalThis.addEventListener('online', listener);
  return () => globalThis.removeEventListener('online', listener);
}

/** How often a stall watch (see `watchStall`) looks at its progress. */
const STALL_CHECK_MS = 1000;

/**
 * Calls `stalled` once `progress()` (a count that grows as the client reads) has not passed its highest for
 * `timeoutMs` (looked at every second; a function is asked each time), unless the returned function is called first
 * (even from within `progress`).
 * A replay waits on the client's buffer before reading its next page; a client that reads nothing held that wait,
 * and the buffer under the send bound, forever: 5 to 9 MB per connection, never dropped.
 */
export function watchStall(progress: () => number, timeoutMs: number | (() => number), stalled: () => void): () => void {
  let high = progress();
  let since = Date.now();
  let watching = true;
  const stop = () => {
    watching = false;
    clearInterval(timer);
  };
  const timer = setInterval(() => {
    const now = progress();
    if (!watching) return;
    if (now > high) {
      high = now;
      since = Date.now();
    } else if (Date.now() - since >= (typeof timeoutMs === 'number' ? timeoutMs : timeoutMs())) {
      stop();
      stalled();
    }
  }, STALL_CHECK_MS);
  timer.unref();
  return stop;
}

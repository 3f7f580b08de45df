// Waiting in tests, without the server: unit tests under src/ use these as the end-to-end helpers do.

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `condition` holds, checking every 10 ms; fails after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met in time`);
    await sleep(10);
  }
}

/** Reads a raw SSE response until `enough` says stop, the server ends it, or `timeoutMs`; returns the text. */
export async function readStream(
  url: string,
  init: RequestInit,
  /** Asked after each chunk; `chunk` is the text it added, for a check that should not look at all of a long text. */
  enough: (text: string, chunk: string) => boolean,
  timeoutMs = 5000,
): Promise<{ res: Response; text: string; ended: boolean }> {
  const controller = new AbortController();
  const res = await fetch(url, { ...init, signal: controller.signal });
  let text = '';
  let ended = false;
  if (res.body) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      let chunk = '';
      while (!enough(text, chunk)) {
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        chunk = decoder.decode(value, { stream: true });
        text += chunk;
      }
    } catch {
      // aborted
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }
  return { res, text, ended };
}

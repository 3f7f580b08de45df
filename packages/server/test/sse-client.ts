/** Reads a raw SSE response until `enough` says stop, the server ends it, or `timeoutMs`; returns the text. */
export async function readStream(
  url: string,
  init: RequestInit,
  enough: (text: string) => boolean,
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
      while (!enough(text)) {
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        text += decoder.decode(value, { stream: true });
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

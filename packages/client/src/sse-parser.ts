export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * The WHATWG event-stream parser: lines end in CR, LF or CRLF; `data` lines
 * join with LF; a blank line dispatches; comments (`:`) are signs of life.
 * Written here because the SDK has no dependencies and reads the stream with
 * fetch, which, unlike EventSource, lets it see heartbeats and send headers.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private sawCr = false;

  constructor(private readonly dispatch: (message: SseMessage) => void) {}

  push(chunk: string): void {
    let text = chunk;
    // A CR at the end of the last chunk already ended its line; a leading LF here belongs to it.
    if (this.sawCr && text.startsWith('\n')) text = text.slice(1);
    this.sawCr = text.endsWith('\r');
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.dispatch({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

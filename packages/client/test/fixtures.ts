import { after } from 'node:test';
import { Herald, type HeraldOptions } from '../src/index.js';

/**
 * The clients and clean-ups of one `describe` block, all ended by its `after` (clients closed first, then each
 * clean-up in the order added). Call it inside the `describe`.
 */
export function suiteResources(): { client(options: HeraldOptions): Herald; cleanups: Array<() => Promise<void>> } {
  const clients: Herald[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  });
  return {
    client(options) {
      const c = new Herald(options);
      clients.push(c);
      return c;
    },
    cleanups,
  };
}

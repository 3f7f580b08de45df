// Preloaded into benchmark servers (with --expose-gc): on SIGUSR2, collect garbage and write
// process.memoryUsage() to $BENCH_MEM_FILE, so memory readings count live objects only.
import { writeFileSync } from 'node:fs';

process.on('SIGUSR2', () => {
  globalThis.gc?.();
  if (process.env.BENCH_MEM_FILE) writeFileSync(process.env.BENCH_MEM_FILE, JSON.stringify(process.memoryUsage()));
});

// A stand-in for DNS that never answers, for names under `.slow.test` only: like getaddrinfo() on such a name, each
// lookup holds one thread of libuv's pool until it is released (here a blocking open() of a FIFO, which uses no CPU),
// then fails as an unanswered lookup does (EAI_AGAIN). Every other name goes to the real dns.lookup.
import dns from 'node:dns';
import { closeSync, constants, mkdtempSync, open, close, openSync, rmSync, unlink } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BlockingDns {
  /** Lookups of slow names holding a pool thread now. */
  readonly held: number;
  /** Lookups of slow names asked for so far. */
  readonly asked: number;
  /** Lets every held lookup fail now, and every later one at once. */
  releaseAll(): void;
  /** Puts the real dns.lookup back (held lookups are released). */
  restore(): void;
}

export function installBlockingDns(): BlockingDns {
  const real = dns.lookup;
  const dir = mkdtempSync(join(tmpdir(), 'herald-blocking-dns-'));
  const fifos = new Set<string>();
  let asked = 0;
  let released = false;
  const release = (fifo: string) => {
    try {
      // Opening the write end lets the blocked open() of the read end return.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // Already released.
    }
  };
  const blocking = function lookup(hostname: string, options: unknown, callback?: unknown): void {
    if (typeof options === 'function') [options, callback] = [{}, options];
    if (!/\.slow\.test\.?$/i.test(hostname)) return void (real as (...args: unknown[]) => void).call(dns, hostname, options, callback);
    asked += 1;
    const fail = () => (callback as (err: NodeJS.ErrnoException) => void)(Object.assign(new Error(`getaddrinfo EAI_AGAIN ${hostname}`), { code: 'EAI_AGAIN', hostname }));
    if (released) return void setImmediate(fail);
    const fifo = join(dir, `lookup-${asked}`);
    execFileSync('mkfifo', [fifo]);
    fifos.add(fifo);
    open(fifo, 'r', (err, fd) => {
      fifos.delete(fifo);
      if (!err) close(fd, () => {});
      unlink(fifo, () => {});
      fail();
    });
  };
  dns.lookup = blocking as typeof dns.lookup;
  syncBuiltinESMExports();
  return {
    get held() {
      return fifos.size;
    },
    get asked() {
      return asked;
    },
    releaseAll() {
      released = true;
      for (const fifo of fifos) release(fifo);
    },
    restore() {
      for (const fifo of fifos) release(fifo);
      dns.lookup = real;
      syncBuiltinESMExports();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

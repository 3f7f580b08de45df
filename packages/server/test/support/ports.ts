import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The lowest port of the kernel's range for port 0 and for the local end of outgoing connections. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (low > 0) return low;
  } catch {
    // Not Linux: the IANA range.
  }
  return 49152;
}

const tryListen = (port: number, host: string) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });

/**
 * A free port for a server that a test stops and starts again on the same port (a restart, a killed Redis). Taken
 * below the ephemeral range: a port from it (port 0's) may be taken while the server is down by the local end of any
 * outgoing connection on the machine (other test files run in parallel), or by a client's own reconnect to it (a TCP
 * self-connect), and the restart fails with EADDRINUSE.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const low = ephemeralLow();
  const floor = Math.max(1024, Math.min(20_000, low - 10_000));
  const span = Math.max(1, low - floor);
  for (let tries = 0; tries < 200; tries++) {
    const port = floor + Math.floor(Math.random() * span);
    if (await tryListen(port, host)) return port;
  }
  throw new Error(`no free port found below ${low}`);
}

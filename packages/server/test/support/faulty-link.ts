// A relay between one client and a server, to fail that client's link alone.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface FaultyLink {
  /** A URL like the target's, through this link. */
  url: string;
  /** Drops every connection and refuses new ones: the server looks down. */
  cut(): void;
  /** Keeps connections open but passes nothing either way: the server looks hung, or the network lost. */
  blackhole(): void;
  /**
   * The next chunk a client sends that holds `marker` (`COMMIT`) still reaches the server, but from then on nothing
   * the server sends on that connection comes back: the statement ran, its answer was lost.
   */
  muteAfter(marker: string): void;
  /** Back to normal; connections broken meanwhile stay broken. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A TCP relay in front of a server (PostgreSQL, Redis), to make it unreachable
 * for one client without stopping the server everyone else shares.
 */
export async function faultyLinkTo(target: string): Promise<FaultyLink> {
  const upstream = new URL(target);
  let mode: 'pass' | 'cut' | 'blackhole' = 'pass';
  let muteMarker: string | undefined;
  const pairs = new Set<[Socket, Socket]>();
  /** Every socket either side, so `cut` and `close` can end them all. */
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {}).on('close', () => sockets.delete(socket));
    return socket;
  };
  const server = createServer((client) => {
    track(client);
    if (mode === 'cut') return void client.destroy();
    if (mode === 'blackhole') return void client.pause();
    const remote = track(connect(Number(upstream.port || (upstream.protocol.startsWith('redis') ? 6379 : 5432)), upstream.hostname));
    const pair: [Socket, Socket] = [client, remote];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      remote.destroy();
    };
    for (const socket of pair) socket.on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (muteMarker === undefined || !chunk.includes(muteMarker)) return;
      muteMarker = undefined;
      remote.unpipe(client);
      remote.on('data', () => {});
    });
    client.pipe(remote);
    remote.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  const cut = () => {
    mode = 'cut';
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: url.toString(),
    cut,
    muteAfter(marker: string) {
      muteMarker = marker;
    },
    blackhole() {
      mode = 'blackhole';
      for (const [client, remote] of pairs) {
        client.unpipe(remote);
        remote.unpipe(client);
        client.pause();
        remote.pause();
      }
    },
    restore() {
      mode = 'pass';
    },
    async close() {
      cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

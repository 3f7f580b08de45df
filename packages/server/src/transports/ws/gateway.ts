import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type Server as WsServer } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { CloseCodes, HeraldError } from '@herald/protocol';
import type { AppContext } from '../../http/context.js';
import { credentialFrom } from '../../http/authenticate.js';
import { assertOriginAllowed } from '../../http/cors.js';
import type { Principal } from '../../auth/principal.js';
import { SessionSocket, WsSession } from './session.js';
import { countRefused, refusalReason } from '../../metrics/index.js';
import { Rota } from '../../util/rota.js';

export const WS_PATH = '/v1/ws';

const STATUS_TEXT = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' } as const;

function refuse(socket: Duplex, status: keyof typeof STATUS_TEXT, error: HeraldError): void {
  countRefused('ws', refusalReason(status));
  const body = JSON.stringify(error.toJSON());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * `GET /v1/ws`: the WebSocket transport, on the same port as the HTTP API.
 * `ws` does the protocol (RFC 6455); this owns the upgrade, the heartbeat and
 * the sessions.
 */
export class WsGateway {
  private readonly wss: WsServer<typeof SessionSocket>;
  /** The open sessions, each pinged once per heartbeat: those that missed two pongs are dropped instead. */
  private readonly sessions: Rota<WsSession>;
  private closing = false;

  constructor(
    server: Server,
    private readonly ctx: AppContext,
    private readonly logger: FastifyBaseLogger,
  ) {
    this.wss = new WebSocketServer<typeof SessionSocket>({
      noServer: true,
      maxPayload: ctx.config.ws.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      WebSocket: SessionSocket,
    });
    server.on('upgrade', (req, socket, head) => {
      // A throw here would be an unhandled rejection, which ends the process: it ends this socket instead.
      this.onUpgrade(req, socket, head).catch((err: unknown) => {
        logger.error({ err }, 'websocket upgrade failed');
        socket.destroy();
      });
    });
    this.sessions = new Rota(ctx.config.ws.heartbeat * 1000, (session) => {
      if (session.missedPongs >= 2) {
        logger.info('websocket missed two pongs: dropping it');
        session.ws.terminate();
        return;
      }
      session.missedPongs += 1;
      session.ws.ping();
    });
  }

  get size(): number {
    return this.sessions.size;
  }

  /** One listener for every upgrading socket: a closure here would keep this call's context for the socket's life. */
  private readonly onSocketError = (err: Error) => this.logger.debug({ err }, 'upgrade socket error');

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', this.onSocketError);
    // Node's parser lets through a target such as `//a:99999/v1/ws`, which URL reads as a host and refuses.
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://herald.invalid');
    } catch {
      return refuse(socket, 400, new HeraldError('bad_request', 'The request target is not a valid path.'));
    }
    if (url.pathname !== WS_PATH) return refuse(socket, 404, new HeraldError('not_found', `No WebSocket endpoint at ${url.pathname}.`));
    if (this.closing) return refuse(socket, 503, new HeraldError('unavailable', 'The server is shutting down.'));
    try {
      assertOriginAllowed(req.headers.origin, this.ctx.config.cors.origins, req.headers.host);
    } catch (error) {
      return refuse(socket, 403, error as HeraldError);
    }
    let principal: Principal | undefined;
    let authFailed = false;
    try {
      principal = await this.ctx.auth.authenticate(credentialFrom(req.headers, Object.fromEntries(url.searchParams)));
    } catch {
      authFailed = true;
    }
    // Upgrade even when the credential is bad: a browser sees a close code (1008), never an HTTP status.
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // `ws` listens for the socket's errors from here on: one listener fewer for every open socket.
      socket.removeListener('error', this.onSocketError);
      if (authFailed) {
        countRefused('ws', 'unauthorized');
        ws.close(CloseCodes.policyViolation, 'invalid credential');
        return;
      }
      // The session joins `sessions` and leaves it when its socket closes.
      new WsSession(ws, this.ctx, this.logger, principal, this.sessions);
    });
  }

  /** Drains and closes every socket with 1001, then forcibly ends any that do not finish the close handshake. */
  async close(): Promise<void> {
    this.closing = true;
    this.sessions.stop();
    const sessions = [...this.sessions];
    await Promise.all(sessions.map((s) => s.drainAndClose(2000)));
    const deadline = Date.now() + 2000;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const s of this.sessions) s.ws.terminate();
    this.wss.close();
  }
}

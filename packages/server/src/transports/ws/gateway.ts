import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type Server as WsServer } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { CloseCodes, HeraldError } from '@herald/protocol';
import type { AppContext } from '../../http/context.js';
import { credentialFrom } from '../../http/authenticate.js';
import { assertOriginAllowed } from '../../http/cors.js';
import { shuttingDown } from '../../http/errors.js';
import type { Principal } from '../../auth/principal.js';
import { isRefusedCredential, SessionSocket, UNCHECKED_CLOSE, WsSession } from './session.js';
import { countRefused, refusalReason } from '../../metrics/index.js';
import { Rota } from '../../util/rota.js';

export const WS_PATH = '/v1/ws';

/** The statuses a handshake is refused with. */
type RefusalStatus = 400 | 403 | 404 | 405 | 426 | 503;

/** `headers` are extra header lines, each ending in CRLF; `connection` the Connection field's value. */
function refuse(socket: Duplex, status: RefusalStatus, error: HeraldError, headers = '', connection = 'close'): void {
  countRefused('ws', refusalReason(status));
  const body = JSON.stringify(error.toJSON());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${headers}` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: ${connection}\r\n\r\n${body}`,
  );
}

/**
 * True for a request that asks for a WebSocket (`Upgrade: websocket`, RFC 6455 §4.2.1). Node hands every request
 * with `Connection: upgrade` to the `upgrade` listeners, whatever protocol it names: one that asks for another
 * (`Upgrade: h2c`, as `curl --http2` and Java's HttpClient send on http:// URLs) is an ordinary request, which
 * the server answers as if the header were absent (RFC 9110 §7.8); see `http/upgrade-fallback.ts`.
 */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return typeof req.headers.upgrade === 'string' && req.headers.upgrade.trim().toLowerCase() === 'websocket';
}

/** A Sec-WebSocket-Key is 16 random bytes in base64 (RFC 6455 §4.1), the test `ws` applies. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{21}[AQgw]==$/;
/** RFC 6455 §4.1: Sec-WebSocket-Protocol is a list of distinct tokens. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * What is wrong with a WebSocket opening handshake (RFC 6455 §4.2.1), as the refusal to send; undefined when
 * nothing is. Checked here, before `ws` sees the request, so that a refusal is JSON like every other Herald error
 * (`ws` answers in text/html), and so that a version other than 13 gets 426 with the version the server speaks
 * (§4.2.2), where `ws` answered 400 and took the pre-RFC draft version 8 too.
 */
function handshakeFault(req: IncomingMessage): { status: RefusalStatus; error: HeraldError; headers?: string; connection?: string } | undefined {
  if (req.method !== 'GET') {
    return { status: 405, error: new HeraldError('method_not_allowed', 'A WebSocket handshake is a GET request.'), headers: 'Allow: GET\r\n' };
  }
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) {
    return { status: 400, error: new HeraldError('bad_request', 'A WebSocket handshake is an HTTP/1.1 request.') };
  }
  // RFC 6455 §4.2.1 (and RFC 9112 §3.2) require the server's authority in Host. Node answers an ordinary request
  // without one 400 itself, but hands an upgrade over as it is, which `ws` then accepted.
  if (!req.headers.host) {
    return { status: 400, error: new HeraldError('bad_request', 'A WebSocket handshake names the server in Host (RFC 6455 section 4.1).') };
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13') {
    // 426 names the protocol it wants in Upgrade (RFC 9110 §15.5.22), and Upgrade is listed in Connection (§7.8).
    const said = version === undefined ? 'No Sec-WebSocket-Version' : `Sec-WebSocket-Version ${JSON.stringify(version)}`;
    const error = new HeraldError('upgrade_required', `${said}: this server speaks version 13 (RFC 6455).`);
    return { status: 426, error, headers: 'Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n', connection: 'Upgrade, close' };
  }
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !WEBSOCKET_KEY.test(key.trim())) {
    return { status: 400, error: new HeraldError('bad_request', 'Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 section 4.1).') };
  }
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined) {
    const list = protocols.split(',').map((p) => p.trim());
    if (!list.every((p) => TOKEN.test(p)) || new Set(list).size !== list.length) {
      return { status: 400, error: new HeraldError('bad_request', 'Sec-WebSocket-Protocol must be a list of distinct tokens (RFC 6455 section 4.1).') };
    }
  }
  return undefined;
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
      // Herald speaks no subprotocol: one a client offers is never chosen (RFC 6455 §4.2.2 /subprotocol/ is one
      // "the server is ready to use", else null). Without this `ws` picked the client's first, whatever it was.
      handleProtocols: () => false,
    });
    server.on('upgrade', (req, socket, head) => {
      // Not a WebSocket handshake: an ordinary request, served by the HTTP server (see server.ts).
      if (!isWebSocketUpgrade(req)) return;
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
    if (this.closing) return refuse(socket, 503, shuttingDown());
    const fault = handshakeFault(req);
    if (fault) return refuse(socket, fault.status, fault.error, fault.headers, fault.connection);
    try {
      assertOriginAllowed(req.headers.origin, this.ctx.config.cors.origins, req.headers.host);
    } catch (error) {
      return refuse(socket, 403, error as HeraldError);
    }
    let principal: Principal | undefined;
    let authFailed = false;
    let unchecked = false;
    const query = Object.fromEntries(url.searchParams);
    try {
      principal = await this.ctx.auth.authenticate(credentialFrom(req.headers, query, this.ctx.config.cors.origins));
    } catch (error) {
      // Refused (`unauthorized`), or not checked at all (the store could not be asked): only a refusal is final.
      if (isRefusedCredential(error)) authFailed = true;
      else unchecked = true;
    }
    // Refused, and it was the cookie's: the client may still authenticate in its first frame (see WsSession).
    const cookieRefused = authFailed && credentialFrom({ ...req.headers, cookie: undefined }, query, this.ctx.config.cors.origins) === undefined;
    // Upgrade even when the credential is bad: a browser sees a close code (1008), never an HTTP status.
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // `ws` listens for the socket's errors from here on: one listener fewer for every open socket.
      socket.removeListener('error', this.onSocketError);
      if (unchecked) {
        ws.close(UNCHECKED_CLOSE.code, UNCHECKED_CLOSE.reason);
        return;
      }
      if (authFailed && !cookieRefused) {
        countRefused('ws', 'unauthorized');
        ws.close(CloseCodes.policyViolation, 'invalid credential');
        return;
      }
      // The session joins `sessions` and leaves it when its socket closes.
      new WsSession(ws, this.ctx, this.logger, principal, this.sessions, cookieRefused);
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

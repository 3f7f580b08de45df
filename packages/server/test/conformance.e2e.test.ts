import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fetch } from 'undici';
import { ADMIN_KEY, rawConnection, suiteServers, until, type TestServer } from './helpers.js';

/**
 * Byte-level conformance of the HTTP and WebSocket front door, checked over raw sockets: RFC 8259 (JSON bodies),
 * RFC 9110 (Upgrade), RFC 6455 (the opening handshake).
 */
describe('conformance at the byte level', () => {
  const { start } = suiteServers();
  const AUTH = `Authorization: Bearer ${ADMIN_KEY}\r\n`;

  /**
   * Writes `parts` (a number waits that many ms) on a fresh connection; resolves with all it received once it closes
   * or `done` says it has what it waits for (by a deadline of 5 s, so a loaded machine is waited for, not timed).
   */
  async function exchange(h: TestServer, parts: Array<string | Buffer | number>, done: (text: string) => boolean): Promise<string> {
    const { socket, received } = await rawConnection(h.url);
    let closed = false;
    socket.once('close', () => (closed = true));
    for (const part of parts) {
      if (typeof part === 'number') await new Promise((r) => setTimeout(r, part));
      else socket.write(part);
    }
    await until(() => closed || done(received()), 5000, 'the answers').catch(() => {});
    socket.destroy();
    return received();
  }
  /** For `exchange`: done once `n` whole answers are in. */
  const answered = (n: number) => (text: string) => answers(text).length >= n && answers(text).every((a) => a.body.length === Number(a.headers['content-length'] ?? 0));
  /** The answers in a connection's bytes: status, lower-cased headers and body (each by its Content-Length). */
  function answers(text: string): Array<{ status: number; headers: Record<string, string>; body: string }> {
    const out = [];
    let rest = text;
    while (rest.startsWith('HTTP/1.1 ')) {
      const end = rest.indexOf('\r\n\r\n');
      const [statusLine, ...fields] = rest.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const field of fields) {
        const colon = field.indexOf(':');
        const name = field.slice(0, colon).toLowerCase();
        headers[name] = headers[name] === undefined ? field.slice(colon + 1).trim() : `${headers[name]}, ${field.slice(colon + 1).trim()}`;
      }
      const length = Number(headers['content-length'] ?? 0);
      out.push({ status: Number(statusLine!.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) });
      rest = rest.slice(end + 4 + length);
    }
    return out;
  }

  it('refuses a JSON body that is not UTF-8 with 400 invalid_json, whatever charset it names: nothing is stored with U+FFFD in place of its bytes', async () => {
    const h = await start();
    const latin1 = Buffer.from('{"data":"caf\xe9"}', 'latin1');
    for (const contentType of ['application/json', 'application/json; charset=iso-8859-1']) {
      const res = await fetch(`${h.url}/v1/channels/bytes/events`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': contentType }, body: latin1 });
      assert.equal(res.status, 400, contentType);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'invalid_json');
      assert.match(body.error.message, /UTF-8/);
    }
    const batch = await fetch(`${h.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"events":[{"channel":"bytes","data":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]),
    });
    assert.equal(batch.status, 400);
    assert.equal(((await batch.json()) as { error: { code: string } }).error.code, 'invalid_json');
    assert.equal((await h.call('GET', '/v1/channels/bytes/events?after=0')).body.events.length, 0, 'nothing appended');
    // UTF-8 is taken whole, and a charset parameter changes nothing (RFC 8259 §11): JSON is UTF-8.
    for (const contentType of ['application/json; charset=utf-8', 'application/json; charset=utf-16']) {
      const ok = await fetch(`${h.url}/v1/channels/bytes/events`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': contentType }, body: Buffer.from('{"data":"café €"}') });
      assert.equal(ok.status, 201, contentType);
      assert.equal(((await ok.json()) as { data: string }).data, 'café €');
    }
  });

  it('answers a request that asks to upgrade to another protocol (h2c) as plain HTTP/1.1: its body, then the next request on the connection', async () => {
    const h = await start();
    const body = '{"data":"over h2c?"}';
    const received = await exchange(h, [
      `POST /v1/channels/h2c/events HTTP/1.1\r\nHost: herald\r\n${AUTH}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
        'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n' +
        body.slice(0, 5),
      50,
      body.slice(5),
      `GET /v1/channels/h2c/events?after=0 HTTP/1.1\r\nHost: herald\r\n${AUTH}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n`,
    ], answered(3));
    const [published, polled, health] = answers(received);
    assert.equal(published?.status, 201, received);
    assert.equal(JSON.parse(published!.body).data, 'over h2c?');
    assert.equal(published!.headers.upgrade, undefined, 'no upgrade happened');
    assert.equal(polled?.status, 200);
    assert.deepEqual(JSON.parse(polled!.body).events.map((e: { seq: number }) => e.seq), [1]);
    assert.equal(health?.status, 200);
    assert.deepEqual(JSON.parse(health!.body), { status: 'ok' });
  });

  it('answers an OPTIONS from an allowed Origin that is no preflight (no Access-Control-Request-Method) with a JSON 400', async () => {
    const h = await start({ cors: { origins: ['https://app.example'] } });
    const [refused, preflight] = answers(
      await exchange(h, [
        'OPTIONS /v1/channels/c/events HTTP/1.1\r\nHost: herald\r\nOrigin: https://app.example\r\n\r\n',
        'OPTIONS /v1/channels/c/events HTTP/1.1\r\nHost: herald\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n\r\n',
      ], answered(2)),
    );
    assert.equal(refused?.status, 400);
    assert.match(refused!.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(JSON.parse(refused!.body).error.code, 'bad_request');
    assert.equal(preflight?.status, 204, 'a real preflight, on the same connection, is answered as before');
    assert.equal(preflight!.headers['access-control-allow-origin'], 'https://app.example');
  });

  it('does not call an HTTP/1.0 stream keep-alive: its body ends only when the connection closes', async () => {
    const h = await start();
    const received = await exchange(h, [`GET /v1/channels/old/stream HTTP/1.0\r\n${AUTH}\r\n`], (text) => /\r\n\r\nretry: \d+\n(id: \d+\n)?\n/.test(text));
    const head = received.slice(0, received.indexOf('\r\n\r\n'));
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(head, /transfer-encoding|content-length/i, 'a close-delimited body');
    assert.match(head, /\r\nconnection: close(\r\n|$)/i);
    assert.match(received.slice(head.length + 4), /^retry: \d+\nid: 0\n\n/);
  });

  describe('the WebSocket opening handshake (RFC 6455 section 4.2)', () => {
    const handshake = (fields: Record<string, string | undefined>, requestLine = `GET /v1/ws?token=${ADMIN_KEY} HTTP/1.1`) => {
      const all: Record<string, string | undefined> = {
        Host: 'herald',
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version': '13',
        ...fields,
      };
      const lines = Object.entries(all).flatMap(([name, value]) => (value === undefined ? [] : [`${name}: ${value}`]));
      return `${requestLine}\r\n${lines.join('\r\n')}\r\n\r\n`;
    };

    it('chooses no subprotocol, since it speaks none: the 101 has no Sec-WebSocket-Protocol', async () => {
      const h = await start();
      const { socket, received } = await rawConnection(h.url);
      socket.write(handshake({ 'Sec-WebSocket-Protocol': 'chat, superchat' }));
      await until(() => received().includes('\r\n\r\n'), 5000, 'the handshake answer');
      socket.destroy();
      const head = received().slice(0, received().indexOf('\r\n\r\n'));
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
      assert.doesNotMatch(head, /Sec-WebSocket-Protocol/i);
    });

    it('refuses a bad handshake with a JSON error: 426 with the version it speaks, 400, 405 with Allow', async () => {
      const h = await start();
      const cases: Array<[string, string, number, string]> = [
        ['version 8 (a draft)', handshake({ 'Sec-WebSocket-Version': '8' }), 426, 'upgrade_required'],
        ['no version', handshake({ 'Sec-WebSocket-Version': undefined }), 426, 'upgrade_required'],
        ['no key', handshake({ 'Sec-WebSocket-Key': undefined }), 400, 'bad_request'],
        ['a key of 15 bytes', handshake({ 'Sec-WebSocket-Key': Buffer.alloc(15).toString('base64') }), 400, 'bad_request'],
        ['a repeated subprotocol', handshake({ 'Sec-WebSocket-Protocol': 'a, a' }), 400, 'bad_request'],
        ['HTTP/1.0', handshake({}, `GET /v1/ws?token=${ADMIN_KEY} HTTP/1.0`), 400, 'bad_request'],
        // RFC 6455 §4.2.1 item 2 and RFC 9112 §3.2: Node answers a plain request without Host 400, but not an upgrade.
        ['no Host', handshake({ Host: undefined }), 400, 'bad_request'],
        ['an empty Host', handshake({ Host: '' }), 400, 'bad_request'],
        ['POST', handshake({ 'Content-Length': '0' }, `POST /v1/ws?token=${ADMIN_KEY} HTTP/1.1`), 405, 'method_not_allowed'],
      ];
      for (const [name, request, status, code] of cases) {
        const [answer] = answers(await exchange(h, [request], answered(1)));
        assert.equal(answer?.status, status, name);
        assert.match(answer!.headers['content-type'] ?? '', /^application\/json/, name);
        assert.equal(JSON.parse(answer!.body).error.code, code, name);
        if (status === 426) {
          assert.equal(answer!.headers['sec-websocket-version'], '13', name);
          assert.equal(answer!.headers.upgrade, 'websocket', name);
          assert.match(answer!.headers.connection ?? '', /\bupgrade\b/i, name);
        }
        if (status === 405) assert.equal(answer!.headers.allow, 'GET', name);
      }
    });
  });
});

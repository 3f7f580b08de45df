import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, type RawSocket } from './outbox.js';

/** A socket that records each write: how many system calls the outbox would have made, and their bytes. */
function recordingSocket() {
  const writes: Buffer[] = [];
  const socket: RawSocket & { destroyed: boolean } = {
    write: (chunk: Buffer) => (writes.push(chunk), true),
    writableLength: 0,
    destroyed: false,
    writable: true,
    on: () => {},
    off: () => {},
  };
  return { socket, writes, text: () => writes.map((w) => w.toString()) };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const b = (text: string) => Buffer.from(text);

it('writes the frames one tick queued on a socket in one write, in order, at the end of the tick', async () => {
  const s = recordingSocket();
  const box = new Outbox(s.socket);
  box.queue(b('one '));
  box.queue(b('two '));
  await Promise.resolve();
  box.queue(b('three'));
  assert.deepEqual(s.writes, [], 'nothing is written while the tick runs');
  assert.equal(box.buffered, 13, 'queued bytes count as buffered');
  await tick();
  assert.deepEqual(s.text(), ['one two three']);
  assert.equal(box.buffered, 0);
  box.queue(b('four'));
  await tick();
  assert.deepEqual(s.text(), ['one two three', 'four'], 'the next tick is a write of its own');
});

it('joins the same frames once for every socket of a broadcast', async () => {
  const frames = [b('a'), b('b'), b('c')];
  const sockets = [recordingSocket(), recordingSocket(), recordingSocket()];
  for (const s of sockets) {
    const box = new Outbox(s.socket);
    for (const frame of frames) box.queue(frame);
  }
  await tick();
  const written = sockets.map((s) => s.writes);
  assert.ok(written.every((w) => w.length === 1 && w[0]!.toString() === 'abc'));
  assert.equal(written[0]![0], written[1]![0], 'the very same Buffer');
  assert.equal(written[1]![0], written[2]![0]);
});

it('does not share joined bytes between sockets that were queued different frames', async () => {
  const x = b('x');
  const [s1, s2] = [recordingSocket(), recordingSocket()];
  const [box1, box2] = [new Outbox(s1.socket), new Outbox(s2.socket)];
  box1.queue(x);
  box1.queue(b('1'));
  box2.queue(x);
  box2.queue(b('2'));
  await tick();
  assert.deepEqual([s1.text(), s2.text()], [['x1'], ['x2']]);
});

it('flush() writes at once, so bytes written after it follow what was queued', async () => {
  const s = recordingSocket();
  const box = new Outbox(s.socket);
  box.queue(b('event'));
  box.flush();
  s.socket.write(b('close'));
  await tick();
  assert.deepEqual(s.text(), ['event', 'close'], 'and the end of the tick writes nothing twice');
});

it('writes at once past 64 KiB queued, so the kernel takes big frames as they come', () => {
  const s = recordingSocket();
  const box = new Outbox(s.socket);
  box.queue(Buffer.alloc(40 * 1024));
  assert.equal(s.writes.length, 0);
  box.queue(Buffer.alloc(30 * 1024));
  assert.equal(s.writes.length, 1);
  assert.equal(s.writes[0]!.length, 70 * 1024);
  assert.equal(box.buffered, 0);
});

it('drops what is queued for a socket that is gone, or when discarded', async () => {
  const gone = recordingSocket();
  const dropped = recordingSocket();
  new Outbox(gone.socket).queue(b('late'));
  gone.socket.destroyed = true;
  const box = new Outbox(dropped.socket);
  box.queue(b('never'));
  box.discard();
  await tick();
  assert.deepEqual([gone.writes, dropped.writes], [[], []]);
});

// A second floor for the publish benchmark: Fastify with the same route, body schema and answer as the bare
// node:http server, and nothing else (no store, auth, CORS, metrics or tracing). Herald is built on Fastify, so
// this is the most a Fastify route can answer on the machine; Herald's own work is what lies between it and Herald.
// Prints its URL on stdout.
import Fastify from 'fastify';

let seq = 0;
const app = Fastify({ logger: false });
const time = () => new Date().toISOString();
app.post<{ Params: { channel: string }; Body: { type?: string; data: unknown } }>(
  '/v1/channels/:channel/events',
  { schema: { body: { type: 'object', required: ['data'], properties: { type: { type: 'string' }, data: {} } } } },
  async (request, reply) => {
    const { type, data } = request.body;
    const json = JSON.stringify({ id: `evt_${++seq}`, channel: request.params.channel, seq, type: type ?? 'message', data, time: time() });
    return reply.code(201).type('application/json; charset=utf-8').send(json);
  },
);
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
if (address && typeof address === 'object') process.stdout.write(`http://127.0.0.1:${address.port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));

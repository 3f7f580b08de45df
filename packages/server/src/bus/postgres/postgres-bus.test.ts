import { before, after } from 'node:test';
import { admin, createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { describeBusConformance, networkHarness } from '../bus.conformance.js';

let db: TestDatabase;
before(async () => {
  // NOTIFY is scoped to a database, so a throwaway one keeps these tests to themselves.
  db = await createTestDatabase('herald_bus');
});
after(async () => {
  await db?.drop();
});

describeBusConformance('PostgreSQL LISTEN/NOTIFY', () => {
  const name = new URL(db.url).pathname.slice(1);
  return networkHarness(db.url, {
    // PostgreSQL shows no other session's LISTENs: interest routing is checked by the nodes' message counters.
    outage: {
      // Refuses new connections and ends the open ones: every node loses its link until restore.
      async cut() {
        await admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
        await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`);
      },
      restore: () => admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`),
    },
    relayable: true,
  });
});

// @ts-check
/**
 * `npm run mutate`: mutation testing of the modules where a silent break costs most (issue 16). Only the
 * fast unit tests next to the code run against the mutants: the tap runner starts one node:test file per
 * process through tsx and reads its TAP output, and per-test coverage means a mutant runs only the files
 * that reach it. The e2e suite never runs here. `npm run mutate:scores` prints the score per module from
 * reports/mutation/mutation.json; docs/mutation.md lists the survivors judged equivalent.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  "packageManager": "npm",
  "testRunner": "tap",
  "plugins": [
    "@stryker-mutator/tap-runner"
  ],
  "tap": {
    "testFiles": [
      "packages/server/src/auth/patterns*.test.ts",
      "packages/server/src/auth/tokens.test.ts",
      "packages/webhooks/src/**/*.test.ts",
      "packages/protocol/src/cursor*.test.ts",
      "packages/server/src/delivery/outcome.test.ts",
      "packages/server/src/delivery/ssrf*.test.ts",
      "packages/server/src/transports/feed*.test.ts",
      "packages/server/src/ingest/*.test.ts",
      "packages/server/src/log/idempotency.test.ts"
    ],
    "nodeArgs": [
      "--conditions=herald-source",
      "--import",
      "tsx",
      "--test-reporter=tap",
      "-r",
      "{{hookFile}}",
      "{{testFile}}"
    ]
  },
  "mutate": [
    "packages/server/src/auth/patterns.ts",
    "packages/server/src/auth/tokens.ts",
    "packages/webhooks/src/**/*.ts",
    "!packages/webhooks/src/**/*.test.ts",
    "!packages/webhooks/src/types.ts",
    "packages/protocol/src/cursor.ts",
    "packages/server/src/delivery/outcome.ts",
    "packages/server/src/delivery/ssrf.ts",
    "packages/server/src/transports/feed.ts",
    "packages/server/src/ingest/providers.ts",
    "packages/server/src/log/idempotency.ts"
  ],
  "ignorePatterns": [
    "dist",
    "herald-data",
    ".bench-data",
    "bench",
    "deploy",
    "reports",
    "docs",
    "*.tsbuildinfo",
    "packages/server/test",
    "packages/client/test"
  ],
  "coverageAnalysis": "perTest",
  "concurrency": 2,
  "timeoutMS": 10000,
  "reporters": [
    "clear-text",
    "progress",
    "json",
    "html"
  ],
  "jsonReporter": {
    "fileName": "reports/mutation/mutation.json"
  },
  "htmlReporter": {
    "fileName": "reports/mutation/mutation.html"
  },
  "thresholds": {
    "high": 90,
    "low": 85,
    "break": null
  },
  "cleanTempDir": "always"
};

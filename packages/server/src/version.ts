import { createRequire } from 'node:module';

/** The server package's version, for `herald --version` and the outbound `User-Agent`. */
export const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

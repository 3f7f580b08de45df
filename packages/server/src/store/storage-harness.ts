import { afterEach, beforeEach } from 'node:test';
import type { Storage } from './types.js';

/** A backend under test: an empty store, and how to throw it away. */
export interface StorageHarness {
  storage: Storage;
  cleanup(): Promise<void>;
}

export type OpenStorage = () => Promise<StorageHarness>;

/** Opens an empty store before each test of the enclosing suite and cleans it up after; call inside `describe`. */
export function useStorage(open: OpenStorage): () => Storage {
  let harness: StorageHarness | undefined;
  beforeEach(async () => {
    harness = await open();
  });
  afterEach(async () => {
    await harness?.cleanup();
    harness = undefined;
  });
  return () => harness!.storage;
}

export { startServer, type HeraldServer, type StartOptions } from './server.js';
export { loadConfig, ConfigError, envName } from './config/load.js';
export type { HeraldConfig } from './config/schema.js';
export type { EventStore, Storage, KeyStore, SettingsStore } from './store/types.js';
export type { Bus } from './bus/types.js';
export { openSqliteStorage } from './store/sqlite/open.js';

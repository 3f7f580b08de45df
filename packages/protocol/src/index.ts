export * from './errors.js';
export * from './events.js';
export * from './auth.js';
export * from './ws.js';
export * from './presence.js';
export * from './cursor.js';
export * from './json-depth.js';

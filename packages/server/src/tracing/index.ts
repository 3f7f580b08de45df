export * from './traceparent.js';
export * from './spans.js';

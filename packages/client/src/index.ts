export { Herald, HeraldClientError, type ConnectionState, type EpochChange, type HeraldOptions, type StateDetail, type SubscribeOptions, type Subscription } from './client.js';
export type { TransportName } from './transports/types.js';
export type { HeraldEvent, GapInfo } from '@herald/protocol';

export {
  Herald,
  HeraldClientError,
  type ConnectionState,
  type EphemeralPublished,
  type EpochChange,
  type HeraldOptions,
  type StateDetail,
  type SubscribeOptions,
  type Subscription,
} from './client.js';
export { PresenceSet, type PresenceOptions } from './presence.js';
export type { TransportName } from './transports/types.js';
export type { HeraldEvent, GapInfo, PresenceMember, EphemeralMessage, DirectMessage } from '@herald/protocol';

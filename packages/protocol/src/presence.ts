/** The most a presence member's `info` may take, as UTF-8 bytes of its JSON. */
export const PRESENCE_INFO_MAX_BYTES = 1024;

/**
 * One connection in a channel's presence set: `client` is the id the server
 * gave the connection, `sub` the identity of its credential (a token's `sub`,
 * an API key's id, `admin`), `info` what it said about itself when it joined
 * (`null` when nothing).
 */
export interface PresenceMember {
  client: string;
  sub: string;
  info: unknown;
}

export type PresenceAction = 'join' | 'leave';

/** `GET /v1/channels/{channel}/presence` */
export interface PresenceList {
  members: PresenceMember[];
}

/**
 * An ephemeral publish as subscribers see it: no `seq`, no `id`, never in the
 * log, so it moves no cursor and a reconnect does not replay it.
 */
export interface EphemeralMessage {
  channel: string;
  type: string;
  data: unknown;
  time: string;
}

/** A direct message (`send`), as its one receiver sees it: who sent it, on which channel. */
export interface DirectMessage {
  channel: string;
  from: { client: string; sub: string };
  data: unknown;
}

/** What `POST /v1/channels/{channel}/events` with `ephemeral: true` answers (202). */
export interface EphemeralAck {
  channel: string;
  type: string;
  time: string;
  ephemeral: true;
}

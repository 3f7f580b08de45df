/**
 * The channels of the WebRTC example's rooms (`examples:webrtc:<room>`): with `examples.enabled` they have
 * presence sets, and the example's demo tokens cover one of them each.
 */
export const EXAMPLE_CHANNELS: readonly string[] = ['examples:webrtc:*'];

export const EXAMPLE_ROOM = /^[A-Za-z0-9_-]{1,64}$/;

/** How long a demo token lasts. */
export const DEMO_TOKEN_TTL_SECONDS = 3600;

export function exampleRoomChannel(room: string): string {
  return `examples:webrtc:${room}`;
}

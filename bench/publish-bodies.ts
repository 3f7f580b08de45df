// The request bodies of bench:publish, shared with bench:compare so both measure the same requests.

/** One event to one channel. */
export const single = JSON.stringify({ type: 'order.created', data: { orderId: 12345, total: 99.5, currency: 'EUR', items: ['a', 'b'] } });
export const BATCH = 100;
/** A batch of BATCH events over 4 channels. */
export const batchEvents = Array.from({ length: BATCH }, (_, i) => ({ channel: `bench-${i % 4}`, type: 'tick', data: { i, v: Math.random() } }));
export const batch = JSON.stringify({ events: batchEvents });

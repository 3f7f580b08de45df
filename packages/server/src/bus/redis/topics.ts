import type { Topic } from '../transport.js';

/**
 * Redis pub/sub channel names. A channel's name carries the Herald channel
 * as a hash tag, so on Redis Cluster its sharded messages live on the shard
 * that owns that slot, and channels spread over the shards. The all-topic is
 * one name, on one shard: only nodes running a whole-log consumer (outbound
 * delivery) subscribe to it.
 */
export class RedisTopics {
  readonly all: string;
  private readonly channelPrefix: string;

  constructor(private readonly prefix: string) {
    this.all = `${prefix}:all`;
    this.channelPrefix = `${prefix}:ch:`;
  }

  name(topic: Topic): string {
    return topic === 'all' ? this.all : this.channel(topic.channel);
  }

  channel(channel: string): string {
    // Herald channel names cannot contain braces, so the tag is exactly the channel.
    return `${this.channelPrefix}{${channel}}`;
  }

  /** Each node's own health probe, echoed back to itself only. */
  probe(node: string): string {
    return `${this.prefix}:probe:{${node}}`;
  }

  /** Which kind of topic a received name is; undefined for names not ours. */
  kind(name: string): 'all' | 'channel' | undefined {
    if (name === this.all) return 'all';
    return name.startsWith(this.channelPrefix) ? 'channel' : undefined;
  }
}

import type { PresenceMember } from '@herald/protocol';
import { Counts } from '../util/counts.js';

/** A member as the cluster knows it: which channel, and which node holds its connection. */
export interface MemberRecord extends PresenceMember {
  channel: string;
  node: string;
}

/** What a member looks like to clients: no node, which is the cluster's business. */
export function publicMember(record: MemberRecord): PresenceMember {
  return { client: record.client, sub: record.sub, info: record.info };
}

/** Channel names hold no newline, so the key is unambiguous. */
const subKey = (channel: string, sub: string) => `${channel}\n${sub}`;

/**
 * This node's view of every presence set in the cluster: its own members and
 * those the other nodes announced. Indexed by channel (for lists and the
 * per-channel bound) and by node (a node that goes away takes its members).
 */
export class PresenceRegistry {
  private readonly byChannel = new Map<string, Map<string, MemberRecord>>();
  private readonly byNode = new Map<string, Set<MemberRecord>>();
  /** Members per channel and `sub`, for the per-sub bound without walking the set on every join. */
  private readonly bySub = new Counts<string>();

  /** Adds or replaces (same channel and client); returns the record it replaced. */
  add(record: MemberRecord): MemberRecord | undefined {
    let members = this.byChannel.get(record.channel);
    if (!members) {
      members = new Map();
      this.byChannel.set(record.channel, members);
    }
    const previous = members.get(record.client);
    if (previous) this.forget(previous);
    members.set(record.client, record);
    this.bySub.add(subKey(record.channel, record.sub));
    let mine = this.byNode.get(record.node);
    if (!mine) {
      mine = new Set();
      this.byNode.set(record.node, mine);
    }
    mine.add(record);
    return previous;
  }

  remove(channel: string, client: string): MemberRecord | undefined {
    const members = this.byChannel.get(channel);
    const record = members?.get(client);
    if (!members || !record) return undefined;
    members.delete(client);
    if (members.size === 0) this.byChannel.delete(channel);
    this.forget(record);
    return record;
  }

  /** A member replaced or removed: out of its node's index and its sub's count. */
  private forget(record: MemberRecord): void {
    this.bySub.release(subKey(record.channel, record.sub));
    const mine = this.byNode.get(record.node);
    mine?.delete(record);
    if (mine?.size === 0) this.byNode.delete(record.node);
  }

  get(channel: string, client: string): MemberRecord | undefined {
    return this.byChannel.get(channel)?.get(client);
  }

  /** Members of the channel's set under `sub`, on every node. */
  countOf(channel: string, sub: string): number {
    return this.bySub.of(subKey(channel, sub));
  }

  list(channel: string): MemberRecord[] {
    return [...(this.byChannel.get(channel)?.values() ?? [])];
  }

  count(channel: string): number {
    return this.byChannel.get(channel)?.size ?? 0;
  }

  ofNode(node: string): MemberRecord[] {
    return [...(this.byNode.get(node) ?? [])];
  }
}

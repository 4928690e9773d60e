// Optional sharing of one (user, content) stream (`--sse-share-streams on`): the tabs of
// one user that follow the same content item share a single hub subscription, so the
// hub's fan-out loop visits the pair once and the group hands the (already encoded)
// frame to each of its sockets. Each socket is still its own managed connection: caps,
// heartbeats, slow-consumer checks and drain count and treat sockets, which is what
// costs file descriptors and memory. Sharing one socket between tabs is the client
// library's job (cross-tab sharing); this is the server's half.
import type { Hub, HubMessage, Subscriber } from '../core/hub.js';

class SharedGroup implements Subscriber {
  readonly members = new Set<Subscriber>();

  deliver(m: HubMessage): void {
    // A member may leave while this runs (a final event ends it); Set iteration allows that.
    for (const member of this.members) member.deliver(m);
  }

  interrupted(topic: string): void {
    for (const member of [...this.members]) member.interrupted?.(topic);
  }
}

export class StreamSharing {
  private readonly groups = new Map<string, SharedGroup>();

  constructor(private readonly hub: Hub) {}

  /** The key of the group a stream joins: one per (user, topic). */
  static key(userKey: string, topic: string): string {
    return `${userKey}\n${topic}`;
  }

  get groupCount(): number {
    return this.groups.size;
  }

  /** Members of a group (for tests and the dashboard). */
  membersOf(key: string): number {
    return this.groups.get(key)?.members.size ?? 0;
  }

  subscribe(topic: string, key: string, member: Subscriber): void {
    let group = this.groups.get(key);
    if (!group) {
      group = new SharedGroup();
      this.groups.set(key, group);
      this.hub.subscribe(topic, group);
    }
    group.members.add(member);
  }

  unsubscribe(topic: string, key: string, member: Subscriber): void {
    const group = this.groups.get(key);
    if (!group || !group.members.delete(member) || group.members.size > 0) return;
    this.groups.delete(key);
    this.hub.unsubscribe(topic, group);
  }
}

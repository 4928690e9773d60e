// The channels of one Realtime socket, by wire topic. Almost every socket holds a single
// channel, and a Map costs about 180 bytes even with one entry (its hash table is
// allocated for four): one channel is kept in a field, and a Map is made for the second.

export class SocketChannels<C extends { readonly topic: string }> {
  private one: C | undefined;
  private many: Map<string, C> | undefined;

  get size(): number {
    return this.many ? this.many.size : this.one ? 1 : 0;
  }

  get(topic: string): C | undefined {
    if (this.many) return this.many.get(topic);
    return this.one?.topic === topic ? this.one : undefined;
  }

  /** Adds `channel` under its topic, replacing the channel that had it. */
  set(channel: C): void {
    if (this.many) {
      this.many.set(channel.topic, channel);
    } else if (this.one === undefined || this.one.topic === channel.topic) {
      this.one = channel;
    } else {
      this.many = new Map([
        [this.one.topic, this.one],
        [channel.topic, channel],
      ]);
      this.one = undefined;
    }
  }

  delete(topic: string): void {
    if (this.many) {
      this.many.delete(topic);
      if (this.many.size === 0) this.many = undefined;
    } else if (this.one?.topic === topic) {
      this.one = undefined;
    }
  }

  /** The channels in the order they were added: a copy, so the caller may release them while it iterates. */
  list(): C[] {
    return this.many ? [...this.many.values()] : this.one ? [this.one] : [];
  }

  /** The channels, to iterate without adding or removing any meanwhile (`list` for that). */
  values(): Iterable<C> {
    return this.many ? this.many.values() : this.one ? [this.one] : NONE;
  }
}

const NONE: readonly never[] = [];

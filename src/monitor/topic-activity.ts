// Per-topic traffic for the dashboard's "busiest channels": publishes and deliveries per
// topic since the previous sample, counted from the hub's publish observer. Realtime
// broadcasts are not retained (their offsets never move), so offsets alone cannot give
// a rate. Counting is on only while someone watches the dashboard, and the map is
// emptied every sample, so it holds at most the topics active in one interval.
import type { Hub } from '../core/hub.js';

export interface BusyTopic {
  topic: string;
  subscribers: number;
  /** Last retained offset (undefined for a topic seen only through its traffic). */
  offset?: number;
  publishedPerSecond: number;
  deliveredPerSecond: number;
}

export class TopicActivity {
  private counts = new Map<string, { published: number; delivered: number }>();
  private since = Date.now();
  enabled = false;

  constructor(private readonly hub: Hub) {
    hub.observe((msg, subscribers) => {
      if (!this.enabled) return;
      const c = this.counts.get(msg.topic);
      if (c) {
        c.published++;
        c.delivered += subscribers;
      } else {
        this.counts.set(msg.topic, { published: 1, delivered: subscribers });
      }
    });
  }

  /** Starts counting from `now` (when the first viewer arrives). */
  start(now = Date.now()): void {
    this.counts = new Map();
    this.since = now;
    this.enabled = true;
  }

  /**
   * The `limit` busiest topics: the most subscribed ones and the ones with the most
   * traffic since the last call, ordered by deliveries per second, then subscribers.
   * Resets the traffic counts.
   */
  take(limit: number, now = Date.now()): BusyTopic[] {
    const seconds = Math.max(0.001, (now - this.since) / 1000);
    const rows = new Map<string, BusyTopic>();
    const rate = (topic: string) => {
      const c = this.counts.get(topic);
      return { publishedPerSecond: (c?.published ?? 0) / seconds, deliveredPerSecond: (c?.delivered ?? 0) / seconds };
    };
    for (const t of this.hub.busiest(limit)) rows.set(t.topic, { topic: t.topic, subscribers: t.subscribers, offset: t.offset, ...rate(t.topic) });
    const hottest = [...this.counts].sort((a, b) => b[1].delivered - a[1].delivered || b[1].published - a[1].published).slice(0, limit);
    for (const [topic] of hottest) if (!rows.has(topic)) rows.set(topic, { topic, subscribers: this.hub.subscriberCount(topic), ...rate(topic) });
    this.counts = new Map();
    this.since = now;
    return [...rows.values()].sort((a, b) => b.deliveredPerSecond - a.deliveredPerSecond || b.subscribers - a.subscribers).slice(0, limit);
  }
}

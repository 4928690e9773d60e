// Who holds the connection. A client either holds it itself (`LocalCoordinator`: Node,
// or a browser with sharing off) or takes part in a cross-tab group (`TabGroup`, in
// cross-tab.ts) where one leader tab holds it for every tab. Either way the client
// states what it wants (topics, each with where to start) and receives `SourceEvents`.
import type { Start } from './position.js';
import { Source, type SourceEvents, type SourceOptions, type SourceStats } from './source.js';

export interface Coordinator {
  /** The topics this client wants, each with the earliest position one of its subscriptions needs. */
  want(topics: ReadonlyMap<string, Start>): void;
  close(): void;
  readonly role: 'single' | 'leader' | 'follower';
  readonly transport: 'sse' | 'poll' | 'shared' | 'none';
  /** This tab's own connection counters (zeros while a follower). */
  readonly sourceStats: SourceStats;
}

export const NO_SOURCE_STATS: SourceStats = Object.freeze({ connects: 0, opens: 0, polls: 0, fallbacks: 0, restores: 0 });

/** Sums the counters of the sources a tab has held (it may lead, follow, then lead again). */
export function addStats(a: SourceStats, b: SourceStats): SourceStats {
  return { connects: a.connects + b.connects, opens: a.opens + b.opens, polls: a.polls + b.polls, fallbacks: a.fallbacks + b.fallbacks, restores: a.restores + b.restores };
}

export class LocalCoordinator implements Coordinator {
  private readonly source: Source;

  constructor(options: SourceOptions, events: SourceEvents) {
    this.source = new Source(options, events);
  }

  get role(): 'single' {
    return 'single';
  }

  get transport(): 'sse' | 'poll' | 'none' {
    return this.source.cursor().size === 0 ? 'none' : this.source.transport;
  }

  get sourceStats(): SourceStats {
    return { ...this.source.stats };
  }

  want(topics: ReadonlyMap<string, Start>): void {
    this.source.setTopics(topics);
  }

  close(): void {
    this.source.close();
  }
}

// Bytes on the wire per connection: what its TCP socket has read (response headers, HTTP
// chunk framing, WebSocket frame headers and heartbeats included), added to a recorder
// counter as deltas — the figure "network bandwidth" means, as opposed to the event bytes
// a parser sees. Flushed on every worker tick and when the socket goes away.
import type { Recorder } from '../recorder.js';

interface ReadCounter {
  readonly bytesRead: number;
}

export class WireMeter {
  private socket: ReadCounter | undefined;
  private seen = 0;

  constructor(
    private readonly recorder: Recorder,
    private readonly counter: string,
  ) {}

  /** Starts counting a new socket (a reconnect); what the previous one read is flushed first. */
  attach(socket: ReadCounter | undefined): void {
    this.flush();
    this.socket = socket;
    this.seen = 0;
  }

  flush(): void {
    const n = this.socket?.bytesRead ?? 0;
    if (n > this.seen) {
      this.recorder.count(this.counter, n - this.seen);
      this.seen = n;
    }
  }

  detach(): void {
    this.attach(undefined);
  }
}

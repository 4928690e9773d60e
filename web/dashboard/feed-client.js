/* global fetch, TextDecoder, AbortController, setTimeout, clearTimeout */
// Reads the gateway's dashboard feed (an SSE stream) with fetch, so the key travels in an
// Authorization header rather than in a URL that proxies and browser history keep.
// Reconnects after the server's `retry:` delay (with back-off while the server is down)
// and stops for good on 401/403, since retrying a refused key cannot succeed.

/**
 * @param {string} url
 * @param {string} key service_role key
 * @param {{ onEvent(name: string, data: unknown): void, onState(state: string, detail?: string): void }} handlers
 * @returns {{ close(): void }}
 */
export function openFeed(url, key, handlers) {
  let controller;
  let retryMs = 2000;
  let failures = 0;
  let stopped = false;
  let timer;

  const dispatch = (block) => {
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (data.length === 0) return;
    let parsed;
    try {
      parsed = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    handlers.onEvent(event, parsed);
  };

  const connect = async () => {
    controller = new AbortController();
    handlers.onState('connecting');
    let res;
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' }, signal: controller.signal, cache: 'no-store' });
    } catch {
      return reconnect('cannot reach the gateway');
    }
    if (res.status === 401 || res.status === 403) {
      let message = `HTTP ${res.status}`;
      try {
        message = (await res.json()).error.message;
      } catch {
        // keep the status line
      }
      stopped = true;
      handlers.onState('unauthorized', message);
      return;
    }
    if (!res.ok || !res.body) return reconnect(`HTTP ${res.status}`);
    failures = 0;
    handlers.onState('live');
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // the stream broke; reconnect below
    }
    reconnect('the feed ended');
  };

  const reconnect = (why) => {
    if (stopped) return;
    failures++;
    handlers.onState('reconnecting', why);
    timer = setTimeout(connect, Math.min(30_000, retryMs * Math.min(8, failures)));
  };

  void connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      controller?.abort();
    },
  };
}

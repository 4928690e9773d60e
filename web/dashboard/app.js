/* global document, window, location, history, localStorage, requestAnimationFrame, setInterval */
// The live dashboard: keeps the last points the feed sent, redraws the charts on each
// sample, and renders alerts and the busiest channels. Every number comes from the
// server's signals (the same ones alert rules use); the page computes nothing itself.
import { TimeSeriesChart } from './chart.js';
import { openFeed } from './feed-client.js';

const KEY_STORAGE = 'fanout.dashboard.key';
const MAX_POINTS = 300;

const $ = (id) => document.getElementById(id);

// ---- number formatting -------------------------------------------------------------
const count = (v) => (v === null ? '–' : Math.round(v).toLocaleString('en-US'));
const perSecond = (v) => (v === null ? '–' : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(v >= 10 ? 1 : 2));
const seconds = (v) => (v === null ? '–' : v >= 1 ? `${v.toFixed(2)} s` : `${(v * 1000).toFixed(v * 1000 >= 10 ? 0 : 1)} ms`);
const bytes = (v) => (v === null ? '–' : v >= 1 << 30 ? `${(v / (1 << 30)).toFixed(2)} GiB` : `${(v / (1 << 20)).toFixed(1)} MiB`);
const percent = (v) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);
const ms = (v) => `${v >= 10 ? Math.round(v) : +v.toFixed(1)} ms`;
const mib = (v) => `${Math.round(v)} MiB`;
const num = (v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(v < 10 ? 1 : 0)}`);

const TILES = {
  connections: count,
  connections_sse: count,
  connections_ws: count,
  connections_poll: count,
  messages_out_per_second: perSecond,
  messages_in_per_second: perSecond,
  delivery_latency_p99_seconds: seconds,
  errors_per_second: perSecond,
  joins_per_second: perSecond,
  channels: count,
  presence_members: count,
  cpu_ratio: percent,
  rss_bytes: bytes,
  event_loop_lag_p99_seconds: seconds,
  change_feed_lag_last_seconds: seconds,
};

// ---- charts ------------------------------------------------------------------------
const CHARTS = {
  connections: {
    format: num,
    series: [
      { key: 'connections_sse', label: 'SSE', color: '#58a6ff' },
      { key: 'connections_ws', label: 'WebSocket', color: '#3fb950' },
      { key: 'connections_poll', label: 'long-poll', color: '#d29922' },
      { key: 'connections_dashboard', label: 'dashboard', color: '#8593a3' },
    ],
  },
  messages: {
    format: num,
    series: [
      { key: 'messages_out_per_second', label: 'out', color: '#58a6ff' },
      { key: 'messages_in_per_second', label: 'in', color: '#3fb950' },
      { key: 'publishes_per_second', label: 'published', color: '#d29922' },
    ],
  },
  latency: {
    format: ms,
    series: [
      { key: 'delivery_latency_p50_seconds', label: 'p50', color: '#3fb950', scale: 1000 },
      { key: 'delivery_latency_p90_seconds', label: 'p90', color: '#d29922', scale: 1000 },
      { key: 'delivery_latency_p99_seconds', label: 'p99', color: '#f85149', scale: 1000 },
    ],
  },
  memory: {
    format: mib,
    series: [
      { key: 'rss_bytes', label: 'RSS', color: '#58a6ff', scale: 1 / (1 << 20) },
      { key: 'heap_used_bytes', label: 'heap used', color: '#bc8cff', scale: 1 / (1 << 20) },
    ],
  },
  lag: {
    format: ms,
    series: [
      { key: 'event_loop_lag_p99_seconds', label: 'p99', color: '#d29922', scale: 1000 },
      { key: 'event_loop_lag_max_seconds', label: 'max', color: '#f85149', scale: 1000 },
    ],
  },
  cpu: {
    format: (v) => `${Math.round(v)}%`,
    series: [{ key: 'cpu_ratio', label: 'CPU (% of one core)', color: '#58a6ff', scale: 100 }],
  },
};

const state = {
  points: [],
  busiest: [],
  active: [],
  recent: [],
  intervalMs: 1000,
  samples: 0,
  lastSampleAt: 0,
  feed: undefined,
};

const charts = {};
for (const [name, def] of Object.entries(CHARTS)) charts[name] = new TimeSeriesChart($(`chart-${name}`), { ...def, spanMs: 60_000 });

// ---- rendering ---------------------------------------------------------------------
let frameQueued = false;
function render() {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    renderTiles();
    renderCharts();
    renderAlerts();
    renderBusiest();
  });
}

function renderTiles() {
  const last = state.points[state.points.length - 1];
  if (!last) return;
  for (const [signal, format] of Object.entries(TILES)) {
    const el = $(`tile-${signal}`);
    const v = last.v[signal];
    el.textContent = format(v);
    el.dataset.value = v === null ? '' : String(v);
  }
  const open = last.v.open_files;
  const limit = last.v.max_open_files;
  const files = $('tile-open_files');
  files.textContent = open === null ? '–' : limit ? `${count(open)} / ${count(limit)}` : count(open);
  files.dataset.value = open === null ? '' : String(open);
  document.body.dataset.samples = String(state.samples);
}

/** The charts' time span: the history held, at least 60 samples' worth, at most MAX_POINTS'. */
function timeSpan() {
  const first = state.points[0];
  const last = state.points[state.points.length - 1];
  const held = first && last ? last.t - first.t : 0;
  return Math.min(MAX_POINTS * state.intervalMs, Math.max(60 * state.intervalMs, held));
}

function renderCharts() {
  for (const [name, chart] of Object.entries(charts)) {
    chart.spanMs = timeSpan();
    chart.setPoints(state.points);
    chart.draw();
    const legend = $(`legend-${name}`);
    legend.replaceChildren(
      ...chart.latest().map((s) => {
        const item = document.createElement('span');
        item.dataset.series = s.key;
        item.dataset.value = s.value === null ? '' : String(s.value);
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.background = s.color;
        item.append(swatch, `${s.label} ${s.value === null ? '–' : CHARTS[name].format(s.value)}`);
        return item;
      }),
    );
  }
}

const time = (t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false });

function formatSignal(signal, v) {
  if (v === null || v === undefined) return 'no data';
  if (signal.endsWith('_seconds')) return seconds(v);
  if (signal.endsWith('_bytes')) return bytes(v);
  if (signal.endsWith('_ratio')) return percent(v);
  if (signal.endsWith('_per_second')) return `${perSecond(v)}/s`;
  return count(v);
}

function renderAlerts() {
  const body = $('alerts-active').tBodies[0];
  body.replaceChildren(
    ...state.active.map((a) => {
      const tr = document.createElement('tr');
      tr.dataset.rule = a.rule;
      tr.dataset.state = a.state;
      const cells = [a.rule, a.state, a.severity, formatSignal(a.signal, a.value), `${a.op} ${formatSignal(a.signal, a.threshold)}`, time(a.firedAt ?? a.since)];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      tr.children[2].className = `sev-${a.severity}`;
      tr.title = a.description;
      return tr;
    }),
  );
  const firing = state.active.filter((a) => a.state === 'firing').length;
  const badge = $('alerts-count');
  badge.textContent = String(firing);
  badge.className = firing ? 'badge firing' : 'badge';
  $('alerts-none').hidden = state.active.length > 0;
  $('alerts-recent').replaceChildren(
    ...state.recent.slice(0, 50).map((e) => {
      const li = document.createElement('li');
      li.className = e.status;
      li.dataset.rule = e.rule;
      li.textContent = `${time(e.at)} ${e.rule} ${e.status} (${formatSignal(e.signal, e.value)}; ${e.op} ${formatSignal(e.signal, e.threshold)})`;
      return li;
    }),
  );
}

function renderBusiest() {
  const body = $('busiest').tBodies[0];
  body.replaceChildren(
    ...state.busiest.map((b) => {
      const tr = document.createElement('tr');
      tr.dataset.topic = b.topic;
      const cells = [
        [b.topic, 'topic'],
        [count(b.subscribers), 'num'],
        [perSecond(b.publishedPerSecond), 'num'],
        [perSecond(b.deliveredPerSecond), 'num'],
        [b.offset === undefined ? '–' : count(b.offset), 'num'],
      ];
      for (const [text, cls] of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        td.className = cls;
        tr.append(td);
      }
      tr.children[0].title = b.topic;
      return tr;
    }),
  );
  $('busiest-none').hidden = state.busiest.length > 0;
}

function setStatus(s, detail) {
  const el = $('status');
  el.dataset.state = s;
  el.textContent = detail ? `${s}: ${detail}` : s;
}

// ---- feed --------------------------------------------------------------------------
function onEvent(name, data) {
  if (name === 'hello') {
    state.intervalMs = data.intervalMs;
    state.points = data.points.slice(-MAX_POINTS);
    state.busiest = data.busiest;
    state.active = data.active;
    state.recent = data.recent;
    $('instance').textContent = `${data.instance} · pid ${data.pid}`;
  } else if (name === 'sample') {
    state.points.push(data.point);
    if (state.points.length > MAX_POINTS) state.points.splice(0, state.points.length - MAX_POINTS);
    state.busiest = data.busiest;
    state.active = data.active;
    state.samples++;
    state.lastSampleAt = Date.now();
  } else if (name === 'alert') {
    state.active = data.active;
    if (!state.recent.some((e) => e.seq === data.event.seq)) state.recent.unshift(data.event);
  } else if (name === 'close') {
    setStatus('reconnecting', data.reason);
    return;
  }
  render();
}

function onState(s, detail) {
  if (s === 'unauthorized') {
    localStorage.removeItem(KEY_STORAGE);
    askForKey(detail);
    return;
  }
  setStatus(s, detail);
}

function start(key) {
  $('key-form').hidden = true;
  $('main').hidden = false;
  $('forget-key').hidden = false;
  state.feed?.close();
  state.feed = openFeed('/dashboard/feed', key, { onEvent, onState });
}

function askForKey(problem) {
  state.feed?.close();
  state.feed = undefined;
  // Nothing is connecting until there is a key: say what the page is waiting for.
  const status = $('status');
  status.dataset.state = 'idle';
  status.textContent = problem ? 'key refused' : 'waiting for a key';
  $('main').hidden = true;
  $('forget-key').hidden = true;
  $('key-form').hidden = false;
  $('key-error').textContent = problem ?? '';
  $('key-input').focus();
}

/**
 * A key in the URL fragment (never sent to the server) moves to this browser's storage and
 * leaves the address bar. The key is kept for this origin, so a new tab connects without
 * asking again, until "Forget key" (or a refusal) removes it.
 */
function keyFromLocation() {
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (m) {
    localStorage.setItem(KEY_STORAGE, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return localStorage.getItem(KEY_STORAGE);
}

$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const key = $('key-input').value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORAGE, key);
  $('key-input').value = '';
  start(key);
});

$('forget-key').addEventListener('click', () => {
  localStorage.removeItem(KEY_STORAGE);
  askForKey();
});

// Another tab forgot the key or saved a new one: follow it.
window.addEventListener('storage', (e) => {
  if (e.key !== KEY_STORAGE) return;
  if (e.newValue) start(e.newValue);
  else askForKey();
});

window.addEventListener('resize', render);

// Staleness: say so when samples stop arriving while the stream looks open.
setInterval(() => {
  const updated = $('updated');
  if (!state.lastSampleAt) return;
  const ago = (Date.now() - state.lastSampleAt) / 1000;
  updated.textContent = `updated ${time(state.lastSampleAt)}`;
  if ($('status').dataset.state === 'live' && ago > (3 * state.intervalMs) / 1000) setStatus('stale', `no sample for ${Math.round(ago)} s`);
  else if ($('status').dataset.state === 'stale' && ago <= (3 * state.intervalMs) / 1000) setStatus('live');
}, 1000);

const key = keyFromLocation();
if (key) start(key);
else askForKey();

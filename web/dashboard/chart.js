/* global window */
// A small time-series line chart on <canvas>, written for the dashboard so the page needs
// no third-party code: a time axis ending at the newest point, a y axis from 0 to a
// rounded maximum, one line per series, gaps where a value is null (no data).

const FONT = '11px system-ui, sans-serif';
const GRID = '#2a323c';
const AXIS_TEXT = '#8593a3';

/** 1, 2, 2.5 or 5 times a power of ten, at or above `v`. */
export function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export class TimeSeriesChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{ series: { key: string, label: string, color: string, scale?: number }[],
   *           format: (v: number) => string, spanMs: number }} options
   */
  constructor(canvas, options) {
    this.canvas = canvas;
    this.series = options.series;
    this.format = options.format;
    this.spanMs = options.spanMs;
    this.points = [];
  }

  /** @param {{ t: number, v: Record<string, number | null> }[]} points oldest first */
  setPoints(points) {
    this.points = points;
  }

  value(point, s) {
    const raw = point.v[s.key];
    return raw === null || raw === undefined ? null : raw * (s.scale ?? 1);
  }

  /** The newest value of each series (null when it has none), for legends and tests. */
  latest() {
    const last = this.points[this.points.length - 1];
    return this.series.map((s) => ({ key: s.key, label: s.label, color: s.color, value: last ? this.value(last, s) : null }));
  }

  draw() {
    const { canvas } = this;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;

    const last = this.points[this.points.length - 1];
    const end = last ? last.t : Date.now();
    const start = end - this.spanMs;
    const visible = this.points.filter((p) => p.t >= start);
    let max = 0;
    for (const p of visible) for (const s of this.series) max = Math.max(max, this.value(p, s) ?? 0);
    // Four equal steps of a round size, so every grid label is a round number.
    const top = niceCeil((max * 1.1) / 4) * 4;

    const left = Math.max(...[0, 0.25, 0.5, 0.75, 1].map((f) => ctx.measureText(this.format(top * f)).width)) + 10;
    const plot = { x: left, y: 6, w: width - left - 8, h: height - 24 };
    const xOf = (t) => plot.x + ((t - start) / this.spanMs) * plot.w;
    const yOf = (v) => plot.y + plot.h - (v / top) * plot.h;

    // Horizontal grid with y labels.
    ctx.strokeStyle = GRID;
    ctx.fillStyle = AXIS_TEXT;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const y = Math.round(yOf(top * f)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(plot.x, y);
      ctx.lineTo(plot.x + plot.w, y);
      ctx.stroke();
      ctx.fillText(this.format(top * f), plot.x - 6, y);
    }
    // Time labels: minutes (or seconds) before the newest point.
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const stepMs = [1, 2, 5, 10, 15, 30, 60, 120, 300].map((s) => s * 1000).find((step) => this.spanMs / step <= 6) ?? 600_000;
    for (let ago = 0; ago <= this.spanMs; ago += stepMs) {
      const x = xOf(end - ago);
      const label = ago === 0 ? 'now' : stepMs >= 60_000 ? `-${ago / 60_000}m` : `-${ago / 1000}s`;
      ctx.fillText(label, Math.min(Math.max(x, plot.x + 12), plot.x + plot.w - 12), plot.y + plot.h + 6);
    }

    ctx.lineWidth = 1.6;
    ctx.lineJoin = 'round';
    for (const s of this.series) {
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.beginPath();
      for (let i = 0; i < visible.length; i++) {
        const v = this.value(visible[i], s);
        if (v === null) continue;
        const x = xOf(visible[i].t);
        const y = yOf(v);
        const before = i > 0 ? this.value(visible[i - 1], s) : null;
        const after = i + 1 < visible.length ? this.value(visible[i + 1], s) : null;
        if (before === null) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
        // A value between two gaps has no line to be part of: mark it with a dot.
        if (before === null && after === null) ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
      }
      ctx.stroke();
    }
    canvas.dataset.points = String(visible.length);
  }
}

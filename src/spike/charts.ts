// Inline SVG charts for the report, generated here (no CDN, no chart library): line and
// scatter series on linear or log axes, with tick labels, a legend, horizontal threshold
// lines and vertical event markers. Output is a standalone <svg> string.

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  /** Draw points only (scatter) instead of a line. */
  scatter?: boolean;
  dashed?: boolean;
  /** Per-point colors (e.g. pass/fail markers). */
  pointColors?: string[];
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  xLog?: boolean;
  yLog?: boolean;
  /** Horizontal reference lines (thresholds). */
  hlines?: { y: number; label: string; color?: string }[];
  /** Vertical markers (faults, scenario boundaries). */
  vlines?: { x: number; label: string; color?: string }[];
  yMin?: number;
  /** Fit the y axis to the data instead of starting at 0 (linear axes). */
  yFromData?: boolean;
  /** Start a new line segment where consecutive x values are further apart than this (separate runs on one axis). */
  breakGapX?: number;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceTicks(min: number, max: number, count = 5): number[] {
  if (max <= min) return [min];
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

function logTicks(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
    }
  }
  return out.length ? out : [min, max];
}

export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${Math.round((v / 1e6) * 10) / 10}M`;
  if (a >= 1e4) return `${Math.round((v / 1e3) * 10) / 10}k`;
  if (a >= 100) return String(Math.round(v));
  if (a >= 1) return String(Math.round(v * 10) / 10);
  return String(Math.round(v * 1000) / 1000);
}

export function svgChart(spec: ChartSpec): string {
  const W = spec.width ?? 760;
  const H = spec.height ?? 320;
  const m = { l: 64, r: 16, t: 36, b: 56 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = spec.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const ys = [...all.map((p) => p[1]), ...(spec.hlines ?? []).map((h) => h.y)];
  const xs = [...all.map((p) => p[0]), ...(spec.vlines ?? []).map((v) => v.x)];
  let xMin = xs.length ? Math.min(...xs) : 0;
  let xMax = xs.length ? Math.max(...xs) : 1;
  let yMin = spec.yMin ?? (spec.yLog ? Math.min(...ys.filter((y) => y > 0), 1) : spec.yFromData && ys.length ? Math.min(...ys) : Math.min(0, ...ys));
  let yMax = ys.length ? Math.max(...ys) : 1;
  if (spec.xLog) xMin = Math.max(xMin, 1e-9);
  if (spec.yLog) {
    yMin = Math.max(yMin, 0.01);
    yMax = Math.max(yMax, yMin * 10);
  }
  if (xMax === xMin) xMax = xMin + 1;
  if (yMax === yMin) yMax = yMin + 1;
  if (!spec.yLog) {
    const pad = (yMax - yMin) * 0.05;
    yMax += pad;
    if (spec.yFromData && spec.yMin === undefined) yMin -= pad;
  }
  const tx = (x: number): number => m.l + (spec.xLog ? (Math.log(x) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin)) : (x - xMin) / (xMax - xMin)) * pw;
  const ty = (y: number): number => {
    const c = spec.yLog ? Math.max(y, yMin) : y;
    return m.t + ph - (spec.yLog ? (Math.log(c) - Math.log(yMin)) / (Math.log(yMax) - Math.log(yMin)) : (c - yMin) / (yMax - yMin)) * ph;
  };
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11">`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${m.l}" y="20" font-size="14" font-weight="600" fill="#111">${esc(spec.title)}</text>`);
  const yt = spec.yLog ? logTicks(yMin, yMax) : niceTicks(yMin, yMax);
  for (const v of yt) {
    const y = ty(v);
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" fill="#555">${formatTick(v)}</text>`);
  }
  const xt = spec.xLog ? logTicks(xMin, xMax) : niceTicks(xMin, xMax, 8);
  for (const v of xt) {
    const x = tx(v);
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${m.t + ph}" y2="${m.t + ph + 4}" stroke="#999"/>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle" fill="#555">${formatTick(v)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#bbb"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 22}" text-anchor="middle" fill="#333">${esc(spec.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(spec.yLabel)}</text>`);
  for (const h of spec.hlines ?? []) {
    const y = ty(h.y);
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${h.color ?? '#dc2626'}" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${m.l + pw - 4}" y="${(y - 4).toFixed(1)}" text-anchor="end" fill="${h.color ?? '#dc2626'}">${esc(h.label)}</text>`);
  }
  for (const v of spec.vlines ?? []) {
    const x = tx(v.x);
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="${v.color ?? '#6b7280'}" stroke-dasharray="3 3"/>`);
    // Labels near the right edge go to the left of their line, so they are not cut off.
    const right = x > m.l + pw * 0.75;
    parts.push(`<text x="${(right ? x - 3 : x + 3).toFixed(1)}" y="${m.t + 12}" text-anchor="${right ? 'end' : 'start'}" fill="${v.color ?? '#6b7280'}">${esc(v.label)}</text>`);
  }
  for (const s of spec.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!spec.xLog || x > 0));
    if (!pts.length) continue;
    if (!s.scatter) {
      // Break the line where x jumps backwards or leaps ahead (separate runs on one axis are separate segments).
      let d = '';
      let prevX = -Infinity;
      for (const [x, y] of pts) {
        const gap = x < prevX || (spec.breakGapX !== undefined && x - prevX > spec.breakGapX);
        d += `${gap || d === '' ? 'M' : 'L'}${tx(x).toFixed(1)},${ty(y).toFixed(1)} `;
        prevX = x;
      }
      parts.push(`<path d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    }
    if (s.scatter || pts.length <= 40) {
      pts.forEach(([x, y], i) => parts.push(`<circle cx="${tx(x).toFixed(1)}" cy="${ty(y).toFixed(1)}" r="${s.scatter ? 3 : 2.5}" fill="${s.pointColors?.[i] ?? s.color}"/>`));
    }
  }
  // Legend, wrapped onto as many rows as it needs below the axis label.
  let lx = m.l;
  let ly = H - 12;
  const legend: string[] = [];
  for (const s of spec.series) {
    const w = 22 + s.name.length * 6.2;
    if (lx + w > W - m.r && lx > m.l) {
      lx = m.l;
      ly += 14;
    }
    legend.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${s.color}"/>`, `<text x="${lx + 14}" y="${ly + 9}" fill="#333">${esc(s.name)}</text>`);
    lx += w;
  }
  const extra = ly - (H - 12);
  if (extra > 0) parts[0] = parts[0]!.replace(`viewBox="0 0 ${W} ${H}" width="${W}" height="${H}"`, `viewBox="0 0 ${W} ${H + extra}" width="${W}" height="${H + extra}"`);
  if (extra > 0) parts[1] = `<rect x="0" y="0" width="${W}" height="${H + extra}" fill="#ffffff"/>`;
  parts.push(...legend);
  parts.push('</svg>');
  return parts.join('\n');
}

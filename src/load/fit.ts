// Ordinary least-squares line through (x, y) points, with the coefficient of
// determination. Memory per connection is the slope of RSS against open connections
// over every sample of a run (not one division of two readings), reported with its r²
// so a reader can see whether the relation really is linear.

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination, 0..1 (1 = every point on the line); null when y does not vary. */
  r2: number | null;
  n: number;
  /** Range of x covered by the points: a slope fitted over a narrow range says little. */
  xMin: number;
  xMax: number;
}

export interface Point {
  x: number;
  y: number;
}

/** Returns null when fewer than two distinct x values make a line undefined. */
export function linearFit(points: readonly Point[]): LinearFit | null {
  const n = points.length;
  if (n < 2) return null;
  let sx = 0;
  let sy = 0;
  let xMin = Infinity;
  let xMax = -Infinity;
  for (const p of points) {
    sx += p.x;
    sy += p.y;
    if (p.x < xMin) xMin = p.x;
    if (p.x > xMax) xMax = p.x;
  }
  if (xMin === xMax) return null;
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const p of points) {
    const dx = p.x - mx;
    const dy = p.y - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let ssRes = 0;
  for (const p of points) {
    const r = p.y - (slope * p.x + intercept);
    ssRes += r * r;
  }
  return { slope, intercept, r2: syy === 0 ? null : Math.max(0, 1 - ssRes / syy), n, xMin, xMax };
}

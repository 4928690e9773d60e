// Rounding and averaging for the figures a run reports.

export const round = (v: number, digits = 3): number => Math.round(v * 10 ** digits) / 10 ** digits;
export const mean = (xs: readonly number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
export const MB = 1024 * 1024;

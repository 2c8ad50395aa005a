// How numbers read in labels, hovers and tables.

const SI = [
  [1e12, 'T'],
  [1e9, 'B'],
  [1e6, 'M'],
  [1e3, 'k'],
] as const;

/** 6.5B tokens, 410k tok/s, 950: three significant digits at most. */
export function formatCount(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const size = Math.abs(value);
  for (const [scale, suffix] of SI) {
    if (size >= scale) return `${trimZeros((value / scale).toPrecision(3))}${suffix}`;
  }
  return Number.isInteger(value) ? String(value) : trimZeros(value.toPrecision(3));
}

/** Integers with thousands separators (steps): 12,300. */
export function formatInteger(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';
}

/** 3h 02m, 4m 05s, 12.5s. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return `${trimZeros(seconds.toFixed(1))}s`;
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${String(s).padStart(2, '0')}s`;
}

/** Losses as the papers print them, with one more digit: 3.4123. */
export function formatLoss(value: number): string {
  return Number.isFinite(value) ? value.toFixed(4) : '–';
}

export function formatPercent(fraction: number, digits = 1): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(digits)}%` : '–';
}

/** "2.2× fewer steps" for ratio 2.2; "1.3× more steps" for ratio 0.77 (the candidate is slower). */
export function formatSavings(ratio: number, unit: 'steps' | 'tokens'): string {
  if (!Number.isFinite(ratio) || ratio <= 0) return '–';
  if (Math.abs(ratio - 1) < 0.005) return `same ${unit}`;
  const factor = ratio >= 1 ? ratio : 1 / ratio;
  return `${factor.toFixed(factor >= 10 ? 0 : 1)}× ${ratio >= 1 ? 'fewer' : 'more'} ${unit}`;
}

function trimZeros(text: string): string {
  return text.includes('.') && !text.includes('e') ? text.replace(/\.?0+$/, '') : text;
}

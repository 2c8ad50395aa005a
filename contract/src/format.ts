// How numbers read wherever they are shown: the kernel's text and HTML, the terminal, and the
// lab extension's labels, hovers and tables.
import type { ComparisonDoc } from './schema.js';

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
    // From where three digits round up to the scale: 999,700 reads 1M, not 1.00e+3k.
    if (size >= scale * (1 - 5e-4)) return `${trimZeros((value / scale).toPrecision(3))}${suffix}`;
  }
  return Number.isInteger(value) ? String(value) : trimZeros(value.toPrecision(3));
}

// Made once, when the module loads: the first number format loads ICU data (tens of ms), which
// would otherwise land in the first live redraw of a training run.
const INTEGER_FORMAT = new Intl.NumberFormat('en-US');

/** Integers with thousands separators (steps): 12,300. */
export function formatInteger(value: number): string {
  return Number.isFinite(value) ? INTEGER_FORMAT.format(Math.round(value)) : '–';
}

/** 3h 02m, 4m 05s, 12.5s. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const tenths = Math.round(seconds * 10) / 10;
  if (tenths < 60) return `${trimZeros(tenths.toFixed(1))}s`; // 59.96 reads 1m 00s, not 60s
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

/** What a comparison counts along its axis. */
export function axisUnit(axis: ComparisonDoc['axis']): 'steps' | 'tokens' {
  return axis === 'step' ? 'steps' : 'tokens';
}

/** "step 46,000" or "3.0B tokens". */
export function formatPosition(axis: ComparisonDoc['axis'], value: number): string {
  return axis === 'step' ? `step ${formatInteger(value)}` : `${formatCount(value)} tokens`;
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

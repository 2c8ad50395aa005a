// A one-line progress bar for terminals: step, loss, speed and time left.
export function progressLine(step: number, total: number, loss: number, tokensPerS: number, elapsedS: number): string {
  const eta = step > 0 ? (elapsedS / step) * (total - step) : 0;
  return `${bar(step / total)} step ${step}/${total}  loss ${loss.toFixed(3)}  ${formatRate(tokensPerS)} tok/s  ETA ${formatDuration(eta)}`;
}

/** A bar 24 characters wide, filled to `fraction` (0..1). */
export function bar(fraction: number, width = 24): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

export function formatRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

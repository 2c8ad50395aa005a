// Keeps 100k-point runs responsive: an SVG trace draws at most a few thousand points. For each
// of `buckets` equal slices of the x-range it keeps the first, the lowest and the highest point
// and the last, in x order, so loss spikes survive and the line looks as the full data would at
// that width. Chosen over LTTB because it can be stated exactly (and tested): no point that is
// the extreme of its bucket is ever dropped. Works on indices so callers can pick any columns.

export interface XRange {
  min: number;
  max: number;
}

/**
 * Indices (ascending) of the points to draw from a series with ascending `x`. With `range`,
 * only points inside it are kept, plus one neighbour on each side so that the line reaches the
 * edges of a zoomed view. Points with a non-finite x or y are never kept.
 */
export function downsampleIndices(x: ArrayLike<number>, y: ArrayLike<number>, buckets: number, range?: XRange): number[] {
  const n = Math.min(x.length, y.length);
  let start = 0;
  let end = n; // exclusive
  if (range) {
    // first point inside, minus one; last point inside (the one before the first beyond), plus one
    start = Math.max(partitionPoint(x, n, (v) => v < range.min) - 1, 0);
    end = Math.min(partitionPoint(x, n, (v) => v <= range.max) + 1, n);
  }
  const finite: number[] = [];
  const drawable = (i: number): boolean => Number.isFinite(y[i]!) && Number.isFinite(x[i]!);
  if (end - start <= 4 * buckets) {
    for (let i = start; i < end; i++) if (drawable(i)) finite.push(i);
    return finite;
  }
  const x0 = x[start]!;
  const width = (x[end - 1]! - x0) / buckets || 1;
  const kept: number[] = [];
  let bucket = -1;
  let first = -1;
  let last = -1;
  let low = -1;
  let high = -1;
  const flush = (): void => {
    if (first < 0) return;
    for (const index of [...new Set([first, low, high, last])].sort((a, b) => a - b)) kept.push(index);
  };
  for (let i = start; i < end; i++) {
    if (!drawable(i)) continue;
    const value = y[i]!;
    const b = Math.min(Math.floor((x[i]! - x0) / width), buckets - 1);
    if (b !== bucket) {
      flush();
      bucket = b;
      first = low = high = i;
    }
    if (value < y[low]!) low = i;
    if (value > y[high]!) high = i;
    last = i;
  }
  flush();
  return kept;
}

/** The first index in [0, n) where `before(x[i])` is false (x ascending, so `before` flips once). */
function partitionPoint(x: ArrayLike<number>, n: number, before: (value: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(x[mid]!)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The values of `column` at `indices`. */
export function pick<T>(column: ArrayLike<T>, indices: readonly number[]): T[] {
  return indices.map((i) => column[i]!);
}

// The bias-corrected EMA of an exponential sequence in closed form, for tests of ema() and of
// the savings measured on it. For x_n = c + A rⁿ (n = 0, 1, …) and q = 1 − α, after n + 1 steps
//   s_n = c + α A (r^(n+1) − q^(n+1)) / ((r − q)(1 − q^(n+1))).
export function smoothedExponential(c: number, A: number, r: number, alpha: number, n: number): number {
  const q = 1 - alpha;
  return c + (alpha * A * (r ** (n + 1) - q ** (n + 1))) / ((r - q) * (1 - q ** (n + 1)));
}

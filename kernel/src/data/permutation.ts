// A seeded shuffle of [0, n) that needs no memory: a 4-round Feistel network (a bijection) on
// the smallest even power of two ≥ n, "cycle-walked" back into range. Epochs over billions of
// windows cost nothing to set up, and a position in the shuffle is one number to save.

/** A well-mixed 32-bit hash (lowbias32). */
export function hash32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

export class Permutation {
  private readonly half: number;
  private readonly halfSize: number;
  private readonly mask: number;
  private readonly keys: number[];

  constructor(
    readonly n: number,
    key: number,
  ) {
    if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 52) throw new RangeError(`permutation size must be an integer in [1, 2^52], got ${n}`);
    let bits = 2;
    while (2 ** bits < n) bits += 2;
    this.half = bits / 2;
    this.halfSize = 2 ** this.half;
    this.mask = this.halfSize - 1;
    this.keys = [0, 1, 2, 3].map((round) => hash32(hash32(key >>> 0) ^ (0x9e3779b9 * (round + 1))));
  }

  /** The i-th element of the shuffled order. */
  at(i: number): number {
    let x = i;
    // Each pass maps into [0, 4n); walking from a value ≥ n ends, since the map is a bijection.
    do x = this.encrypt(x);
    while (x >= this.n);
    return x;
  }

  private encrypt(x: number): number {
    let left = Math.floor(x / this.halfSize);
    let right = x % this.halfSize;
    for (const k of this.keys) {
      const next = (left ^ (hash32(right ^ k) & this.mask)) >>> 0;
      left = right;
      right = next;
    }
    return left * this.halfSize + right;
  }
}

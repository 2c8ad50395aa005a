// Expert counts small enough to check by hand: two MoE layers (1 and 3) of 2 experts at two
// recorded steps. Layer 1 processes 40 tokens and drops 8 at step 0 (shares 1/4 and 3/4), 40 and
// drops 3 at step 100; layer 3 is balanced at step 0 and processes nothing at step 100.
import type { ExpertCounts } from '../../contract/src/schema.js';

export const TWO_LAYERS: ExpertCounts = {
  layers: [1, 3],
  numExperts: 2,
  step: [0, 100],
  counts: [
    [[10, 30], [20, 20]],
    [[25, 15], [0, 0]],
  ],
  dropped: [
    [8, 0],
    [3, 0],
  ],
};

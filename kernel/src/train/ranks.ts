// Data parallel on one machine: rank r of `world` processes trains a whole replica of the model
// on rows [r·B/world, (r+1)·B/world) of every global batch of B rows (every rank draws the same
// batches in the same order), and the engine sums the ranks' gradients before each step
// (native dist/: through shared memory, or NCCL on GPUs), so every replica takes the step one
// process would take on the whole batch. With shardOptimizer (ZeRO-1) each rank keeps AdamW
// moments for its share of the weights alone and updates only that share, and the ranks gather
// the weights after each step: the same bits as unsharded, in about 1/world of the optimizer state.
// With expertParallel each rank runs and updates only its block of each MoE layer's experts and
// the ranks exchange tokens all-to-all: the same steps as plain data parallel on the same ranks
// (bit for bit unless clipping scales a step; then to rounding).
import type { Batch } from '../data/batch.js';
import { MambalabError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import { engineLayers } from '../models/pattern.js';

/**
 * How the ranks sum their gradients: 'shared-memory' (default) through the host, for ranks on
 * one machine whatever their device; 'nccl' in place on the GPUs, one rank per GPU (the model on
 * device 'cuda', each process on its own GPU: `mambalab train --gpus N`).
 */
export type RankCollective = 'shared-memory' | 'nccl';
const COLLECTIVES: readonly RankCollective[] = ['shared-memory', 'nccl'];

export interface Ranks {
  rank: number;
  world: number;
  /** A file path every rank names alike, fresh for each run (under /dev/shm where there is one). */
  rendezvous: string;
  /** Tells this run's rendezvous from a stale one at the same path: the same on every rank. */
  session: number;
  /** Seconds a rank waits for the others, to join or at a step, before it fails saying so (default 300). */
  timeoutS?: number;
  /** Default 'shared-memory'. */
  collective?: RankCollective;
  /**
   * Each rank keeps AdamW's moments for its share of the weights only (ZeRO-1; default false).
   * Checkpoints then are collective: every rank calls saveCheckpoint / writeCheckpoint, rank 0
   * writes (the whole optimizer state, gathered from the ranks), and fit() follows rank 0's
   * decisions about checkpoints and stopping.
   */
  shardOptimizer?: boolean;
  /**
   * Each rank runs and updates only its contiguous block of every MoE layer's experts (expert
   * parallel; default false; num_experts must be a multiple of world, and not with shardOptimizer).
   * Checkpoints are collective as with shardOptimizer (rank 0 writes the whole model, gathered),
   * every rank must evaluate alike, and generation is refused in the joined process.
   */
  expertParallel?: boolean;
}

export const DEFAULT_RANK_TIMEOUT_S = 300;

/** The environment variable `mambalab train --ranks N` hands each rank's process its Ranks in (JSON). */
export const RANKS_ENV = 'MAMBALAB_RANKS';

/** Checks ranks against a trainer's batch: each rank's slice must split into its micro-batches. */
export function checkRanks(ranks: Ranks, batchSize: number, microBatches: number): void {
  const { rank, world, rendezvous, session, timeoutS = DEFAULT_RANK_TIMEOUT_S, collective = 'shared-memory', shardOptimizer = false, expertParallel = false } = ranks;
  if (!Number.isInteger(world) || world < 1) throw new MambalabError(`ranks.world: expected a positive integer, got ${world}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new MambalabError(`ranks.rank: expected an integer in [0, ${world}), got ${rank}`);
  if (typeof rendezvous !== 'string' || rendezvous === '') throw new MambalabError(`ranks.rendezvous: expected a file path, got ${JSON.stringify(rendezvous)}`);
  if (!Number.isSafeInteger(session) || session < 0) throw new MambalabError(`ranks.session: expected a non-negative integer, got ${session}`);
  if (!(timeoutS > 0)) throw new MambalabError(`ranks.timeoutS: expected a positive number of seconds, got ${timeoutS}`);
  if (!COLLECTIVES.includes(collective)) throw new MambalabError(`ranks.collective: expected 'shared-memory' or 'nccl', got ${JSON.stringify(collective)}`);
  if (typeof shardOptimizer !== 'boolean') throw new MambalabError(`ranks.shardOptimizer: expected true or false, got ${JSON.stringify(shardOptimizer)}`);
  if (shardOptimizer && world < 2) throw new MambalabError(`ranks.shardOptimizer: sharding the optimizer state needs 2 or more ranks to share it, got world ${world}`);
  if (typeof expertParallel !== 'boolean') throw new MambalabError(`ranks.expertParallel: expected true or false, got ${JSON.stringify(expertParallel)}`);
  if (expertParallel && world < 2) throw new MambalabError(`ranks.expertParallel: sharing the experts needs 2 or more ranks, got world ${world}`);
  if (expertParallel && shardOptimizer) throw new MambalabError('ranks.expertParallel: not with shardOptimizer (ZeRO-1\'s shares would cut across the expert blocks): choose one');
  if (batchSize % (world * microBatches) !== 0) {
    throw new MambalabError(`ranks: a batch of ${batchSize} rows does not split into ${world} ranks × ${microBatches} micro-batches of equal rows`);
  }
}

/**
 * Checks expert parallel against a model's layers before anything is allocated: it needs MoE
 * layers ('E'), and their experts must split into `world` equal blocks.
 */
export function checkExpertParallel(config: Pick<ModelConfig, 'pattern' | 'numExperts'>, world: number): void {
  const { pattern, numExperts } = config;
  if (!engineLayers(pattern).flat().includes('E')) throw new MambalabError(`ranks.expertParallel: the model has no mixture-of-experts layer ('E' in pattern '${pattern}') to share`);
  if (numExperts % world !== 0) throw new MambalabError(`ranks.expertParallel: numExperts ${numExperts} does not split into ${world} ranks' equal blocks (numExperts % ranks must be 0)`);
}

/** Rank `rank`'s rows of a global batch. */
export function rowsOf(batch: Batch, ranks: Pick<Ranks, 'rank' | 'world'>): Batch {
  if (batch.batchSize % ranks.world !== 0) throw new MambalabError(`step: a batch of ${batch.batchSize} rows does not split evenly over ${ranks.world} ranks`);
  const rows = batch.batchSize / ranks.world, width = batch.seqLen + 1;
  return { ...batch, tokens: batch.tokens.subarray(ranks.rank * rows * width, (ranks.rank + 1) * rows * width), batchSize: rows };
}

/** This process's Ranks when `mambalab train --ranks N` started it, else undefined. */
export function ranksFromEnv(env: NodeJS.ProcessEnv = process.env): Ranks | undefined {
  const text = env[RANKS_ENV];
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Ranks;
  } catch {
    throw new MambalabError(`${RANKS_ENV}: expected the JSON that train --ranks writes, got ${JSON.stringify(text)}`);
  }
}

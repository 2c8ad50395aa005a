// `mambalab train --ranks N` and `--gpus N`: starts N processes of the same command, rank r of N
// each (its Ranks in MAMBALAB_RANKS: train/ranks.ts), which meet at a fresh rendezvous file. With
// --gpus, rank r runs on GPU r (MAMBALAB_CUDA_DEVICE, which the engine reads) and the ranks sum
// through NCCL, with NVLink multicast off (NCCL_NVLS_ENABLE=0). Rank 0 writes the run and its
// output; the others only train their rows. When a rank fails or dies the others are stopped at
// once (a rank waiting for a dead one would otherwise wait out its timeout) and the run resumes
// from its last checkpoint with --resume. Ctrl-C / SIGTERM go to rank 0, which stops after its
// step and checkpoints; the others are stopped when it exits.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MambalabError } from '../errors.js';
import { native, type NativeAddon } from '../native.js';
import { RANKS_ENV, type Ranks } from '../train/ranks.js';

/** The engine's choice of GPU for a process (core/gpu.h): an index among the visible devices. */
export const CUDA_DEVICE_ENV = 'MAMBALAB_CUDA_DEVICE';

/** How the launcher names itself in errors: `train --ranks N` or `train --gpus N`. */
function launcherName(world: number, gpus: boolean): string {
  return `train --${gpus ? 'gpus' : 'ranks'} ${world}`;
}

/** The environment of a rank's process: this one's, its Ranks, and with gpus its GPU and NCCL's settings. */
export function rankEnv(env: NodeJS.ProcessEnv, ranks: Ranks): NodeJS.ProcessEnv {
  const gpu = ranks.collective === 'nccl' ? { [CUDA_DEVICE_ENV]: String(ranks.rank), NCCL_NVLS_ENABLE: '0' } : {};
  return { ...env, [RANKS_ENV]: JSON.stringify(ranks), ...gpu };
}

/**
 * Before `train --gpus N` starts anything: N GPUs must be visible and NCCL found (findNccl). Returns
 * a line saying what will be used.
 */
export function checkGpus(world: number, addon: NativeAddon = native()): string {
  const gpu = addon.info().gpu;
  const name = launcherName(world, true);
  if (gpu.deviceCount === 0) throw new MambalabError(`${name}: ${gpu.status}`);
  if (gpu.deviceCount < world) {
    throw new MambalabError(`${name}: this machine has ${gpu.deviceCount} GPU${gpu.deviceCount === 1 ? '' : 's'} (${gpu.status}); use --gpus ${gpu.deviceCount} or fewer`);
  }
  const found = findNccl(name, addon);
  return `gpus: ${world} of ${gpu.status}; NCCL ${found.version} (${found.library})`;
}

/**
 * NCCL as the engine finds it (native dist/nccl_api.h: $MAMBALAB_NCCL_LIB, libnccl.so.2, the pip
 * wheel under the usual Python prefixes). When it finds none and MAMBALAB_NCCL_LIB is unset, asks
 * `python` where the nvidia.nccl package (PyTorch's NCCL) is, and if it names a library, sets
 * MAMBALAB_NCCL_LIB to it for the engine and the ranks' processes.
 */
export function findNccl(name: string, addon: NativeAddon, python = 'python3'): { library: string; version: string } {
  try {
    return addon.loadNccl();
  } catch (error) {
    const message = (error as Error).message;
    if (process.env.MAMBALAB_NCCL_LIB !== undefined) throw new MambalabError(`${name}: ${message}`);
    const asked = pythonNccl(python);
    if (asked.library === undefined) throw new MambalabError(`${name}: ${message}\n${python}: ${asked.why}`);
    process.env.MAMBALAB_NCCL_LIB = asked.library;
    try {
      return addon.loadNccl();
    } catch (again) {
      throw new MambalabError(`${name}: ${(again as Error).message}\n(MAMBALAB_NCCL_LIB as ${python} found it: ${asked.library})`);
    }
  }
}

/** Where `python`'s nvidia.nccl package keeps libnccl.so.2, or why it says nothing. */
function pythonNccl(python: string): { library?: string; why: string } {
  const script = 'import os, nvidia.nccl; print(os.path.join(nvidia.nccl.__path__[0], "lib", "libnccl.so.2"))';
  const asked = spawnSync(python, ['-c', script], { encoding: 'utf8', timeout: 30_000 });
  if (asked.error) return { why: `could not ask it (${asked.error.message})` };
  const library = asked.stdout.trim();
  if (asked.status !== 0) return { why: `no nvidia.nccl package (${asked.stderr.trim().split('\n').at(-1) || `exit ${asked.status}`})` };
  if (!existsSync(library)) return { why: `nvidia.nccl has no ${library}` };
  return { library, why: '' };
}

/**
 * Runs this process's command (`argv` after `train`) as `world` ranks; resolves when all ended
 * well. collective 'nccl' (--gpus): one rank per GPU, summing through NCCL. shardOptimizer
 * (--shard-optimizer): each rank keeps its share of the optimizer state. expertParallel
 * (--expert-parallel): each rank runs its block of each MoE layer's experts.
 */
export async function launchRanks(world: number, timeoutS: number, collective: Ranks['collective'] = 'shared-memory', shardOptimizer = false, expertParallel = false): Promise<void> {
  const name = launcherName(world, collective === 'nccl');
  const session = randomInt(2 ** 47);
  const rendezvous = join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `mambalab-ranks-${process.pid}-${session}`);
  const children: ChildProcess[] = [];
  const exits: Promise<{ rank: number; code: number | null; signal: NodeJS.Signals | null }>[] = [];
  let failure: string | undefined;
  const stopped = new Set<number>();  // ranks this launcher killed
  const stopOthers = (except: number) => {
    for (const [rank, child] of children.entries()) {
      if (rank === except || child.exitCode !== null || child.signalCode !== null) continue;
      stopped.add(rank);
      child.kill('SIGKILL');
    }
  };
  for (let rank = 0; rank < world; rank++) {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      env: rankEnv(process.env, { rank, world, rendezvous, session, timeoutS, collective, shardOptimizer, expertParallel }),
      stdio: rank === 0 ? 'inherit' : ['ignore', 'ignore', 'pipe'],
      // Its own process group: a terminal's Ctrl-C reaches this launcher alone, which passes it to rank 0 once.
      detached: true,
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) process.stderr.write(`[rank ${rank}] ${line}\n`);
    });
    children.push(child);
    exits.push(
      new Promise((resolve) => {
        child.on('exit', (code, signal) => {
          if (failure === undefined && code !== 0 && !stopped.has(rank)) {
            failure = `rank ${rank} of ${world} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`;
            stopOthers(rank);
          }
          if (rank === 0) stopOthers(0);  // the others are done too, or wait for it in vain
          resolve({ rank, code, signal });
        });
      }),
    );
  }
  const toRankZero = (signal: NodeJS.Signals) => () => children[0]?.kill(signal);
  const onSigint = toRankZero('SIGINT'), onSigterm = toRankZero('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    const ended = await Promise.all(exits);
    const zero = ended[0]!;
    if (failure === undefined && zero.code !== 0) failure = `rank 0 of ${world} exited with code ${zero.code}`;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    rmSync(rendezvous, { force: true });  // left behind when rank 0 was killed
  }
  if (failure !== undefined) throw new MambalabError(`${name}: ${failure}; the other ranks were stopped (continue with --resume)`);
}

// `mambalab train --ranks N`: starts N processes of the same command, rank r of N each (its
// Ranks in MAMBALAB_RANKS: train/ranks.ts), which meet at a fresh rendezvous file. Rank 0 writes
// the run and its output; the others only train their rows. When a rank fails or dies the others
// are stopped at once (a rank waiting for a dead one would otherwise wait out its timeout) and
// the run resumes from its last checkpoint with --resume. Ctrl-C / SIGTERM go to rank 0, which
// stops after its step and checkpoints; the others are stopped when it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MambalabError } from '../errors.js';
import { RANKS_ENV, type Ranks } from '../train/ranks.js';

/** Runs this process's command (`argv` after `train`) as `world` ranks; resolves when all ended well. */
export async function launchRanks(world: number, timeoutS: number): Promise<void> {
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
    const ranks: Ranks = { rank, world, rendezvous, session, timeoutS };
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      env: { ...process.env, [RANKS_ENV]: JSON.stringify(ranks) },
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
  if (failure !== undefined) throw new MambalabError(`train --ranks ${world}: ${failure}; the other ranks were stopped (continue with --resume)`);
}

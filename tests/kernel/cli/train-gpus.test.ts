// `mambalab train --gpus N` where it can be checked without GPUs: what each rank's process is
// given (its GPU, NCCL's settings), the checks made before any rank starts (enough GPUs, NCCL
// found, by the engine or through PyTorch's python), and the CLI's refusals on a machine with no
// GPU. The runs themselves are tests/gpu/train-gpus.sh's, on a GPU host.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { checkGpus, CUDA_DEVICE_ENV, findNccl, rankEnv } from '../../../kernel/src/cli/train-ranks.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { native, type NativeAddon, type NativeGpuInfo } from '../../../kernel/src/native.js';
import { RANKS_ENV } from '../../../kernel/src/train/ranks.js';
import { C4_SAMPLE, repoRoot, scratchDir } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const TRAIN = ['train', '--model', 'mamba', '--size', 'tiny', '--steps', '2', '--data', C4_SAMPLE, '--batch-size', '4', '--seq-len', '32'];

function mambalab(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 60_000 });
}

/** An addon that reports `gpu` and whose NCCL loads or fails as given (the rest is never called). */
function fakeAddon(gpu: Partial<NativeGpuInfo>, loadNccl: NativeAddon['loadNccl']): NativeAddon {
  const info = { builtWithCuda: true, deviceCount: 0, name: '', computeCapability: 0, status: 'no GPU: none here', ...gpu };
  return { info: () => ({ threads: 1, backends: ['cpu'], gpu: info }), loadNccl } as unknown as NativeAddon;
}

/** Runs body with MAMBALAB_NCCL_LIB as given (unset for undefined), then puts it back. */
function withNcclLib<T>(value: string | undefined, body: () => T): T {
  const old = process.env.MAMBALAB_NCCL_LIB;
  if (value === undefined) delete process.env.MAMBALAB_NCCL_LIB;
  else process.env.MAMBALAB_NCCL_LIB = value;
  try {
    return body();
  } finally {
    if (old === undefined) delete process.env.MAMBALAB_NCCL_LIB;
    else process.env.MAMBALAB_NCCL_LIB = old;
  }
}

test('each rank of --gpus runs on its own GPU with NVLink multicast off; --ranks ranks get neither', () => {
  const base = { PATH: '/bin', NCCL_NVLS_ENABLE: '1' };
  const ranks = { rank: 1, world: 2, rendezvous: '/dev/shm/x', session: 5, timeoutS: 30 };
  const gpu = rankEnv(base, { ...ranks, collective: 'nccl' });
  assert.equal(gpu[CUDA_DEVICE_ENV], '1');
  assert.equal(gpu.NCCL_NVLS_ENABLE, '0', 'forced off whatever the launcher had');
  assert.equal(gpu.PATH, '/bin');
  assert.deepEqual(JSON.parse(gpu[RANKS_ENV]!), { ...ranks, collective: 'nccl' });
  const host = rankEnv(base, { ...ranks, collective: 'shared-memory' });
  assert.equal(host[CUDA_DEVICE_ENV], undefined);
  assert.equal(host.NCCL_NVLS_ENABLE, '1', 'left as it was: no NCCL in shared-memory ranks');
});

test('--gpus N needs N GPUs, said before any rank starts', () => {
  const loads = () => ({ library: '/opt/nccl/libnccl.so.2', version: '2.27.3' });
  const refused = (gpu: Partial<NativeGpuInfo>, world: number, message: RegExp) =>
    assert.throws(() => checkGpus(world, fakeAddon(gpu, loads)), (e: unknown) => e instanceof MambalabError && message.test(e.message));
  refused({}, 2, /^train --gpus 2: no GPU: none here$/);
  refused({ deviceCount: 1, status: '1 GPU: NVIDIA H200 (compute capability 9.0)' }, 2,
    /^train --gpus 2: this machine has 1 GPU \(1 GPU: NVIDIA H200 \(compute capability 9\.0\)\); use --gpus 1 or fewer$/);
  const line = checkGpus(2, fakeAddon({ deviceCount: 8, status: '8 GPUs: NVIDIA H200 (compute capability 9.0)' }, loads));
  assert.equal(line, 'gpus: 2 of 8 GPUs: NVIDIA H200 (compute capability 9.0); NCCL 2.27.3 (/opt/nccl/libnccl.so.2)');
});

test('NCCL missing: the error names what the engine searched, and what python said', (t) => {
  const engine = native();
  const missing = '/nonexistent/mambalab-test/libnccl.so.2';
  // MAMBALAB_NCCL_LIB set: the engine looks there alone, and python is not asked.
  withNcclLib(missing, () => assert.throws(() => findNccl('train --gpus 2', engine, '/nonexistent/python3'), (e: unknown) => {
    assert.ok(e instanceof MambalabError);
    assert.match(e.message, /^train --gpus 2: NCCL: no library could be loaded; tried:\n {2}\/nonexistent\/mambalab-test\/libnccl\.so\.2: /);
    assert.doesNotMatch(e.message, /\/nonexistent\/python3/, 'python is not asked');
    return true;
  }));
  const found = withNcclLib(undefined, () => {
    try {
      return engine.loadNccl();
    } catch {
      return undefined;
    }
  });
  if (found) return t.skip(`NCCL is installed here (${found.library}): the missing-library messages are not checked`);
  const dir = scratchDir();
  const python = (name: string, script: string) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${script}\n`);
    chmodSync(path, 0o755);
    return path;
  };
  const fails = (pythonPath: string, message: RegExp) =>
    withNcclLib(undefined, () => assert.throws(() => findNccl('train --gpus 2', engine, pythonPath), (e: unknown) => {
      assert.ok(e instanceof MambalabError);
      assert.match(e.message, /^train --gpus 2: NCCL: no library could be loaded; tried:\n {2}libnccl\.so\.2: /);
      assert.match(e.message, /searched for the pip wheel's copy .*:\n {2}\/.*\/lib\/python3\*\/site-packages\/nvidia\/nccl\/lib\/libnccl\.so\.2/);
      assert.match(e.message, message);
      assert.equal(process.env.MAMBALAB_NCCL_LIB, undefined, 'nothing found: nothing set');
      return true;
    }));
  fails(python('no-package', 'echo "ModuleNotFoundError: No module named \'nvidia\'" >&2; exit 1'),
    /\n\/.*\/no-package: no nvidia\.nccl package \(ModuleNotFoundError: No module named 'nvidia'\)$/);
  fails(join(dir, 'no-python'), /\n\/.*\/no-python: could not ask it \(spawnSync .*ENOENT\)$/);
  // python names a file that is not a library: the engine is pointed at it, and says why it failed.
  const fake = join(dir, 'libnccl.so.2');
  writeFileSync(fake, 'not a library\n');
  withNcclLib(undefined, () => {
    assert.throws(() => findNccl('train --gpus 2', engine, python('wheel', `echo ${fake}`)), (e: unknown) => {
      assert.ok(e instanceof MambalabError);
      assert.ok(e.message.startsWith(`train --gpus 2: NCCL: no library could be loaded; tried:\n  ${fake}: `), e.message);
      assert.ok(e.message.endsWith(`(MAMBALAB_NCCL_LIB as ${join(dir, 'wheel')} found it: ${fake})`), e.message);
      return true;
    });
    assert.equal(process.env.MAMBALAB_NCCL_LIB, fake, 'the ranks\' processes inherit what python found');
  });
});

test('train --gpus is refused before any rank starts: no GPU here, or flags that contradict it', () => {
  const noGpu = mambalab([...TRAIN, '--out', join(scratchDir(), 'a'), '--gpus', '2']);
  assert.equal(noGpu.status, 2, noGpu.stderr);
  assert.match(noGpu.stderr, /train --gpus 2: no GPU: /);
  assert.doesNotMatch(noGpu.stderr, /\[rank \d\]|\n\s+at /, 'no rank started, no stack trace');
  for (const [flags, message] of [
    [['--gpus', '2', '--ranks', '2'], /train: --gpus N already starts N ranks \(one per GPU\): give --gpus or --ranks, not both/],
    [['--gpus', '2', '--device', 'cpu'], /train: --gpus trains on GPUs: --device must be cuda or left out, got 'cpu'/],
    [['--gpus', '3'], /train: --gpus 3 must divide the batch of 4 rows \(--batch-size\)/],
    [['--gpus', '0'], /--gpus: expected an integer ≥ 1, got '0'/],
  ] as const) {
    const run = mambalab([...TRAIN, '--out', join(scratchDir(), 'b'), ...flags]);
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, message);
  }
});

// Fuzzing the importers' readers: PyTorch checkpoints (readTorchCheckpoint: the zip directory
// and the pickle machine) and whole imports (importCheckpoint: config.json, safetensors and
// .bin weights of every layout), from checkpoints PyTorch wrote. A damaged input is read or
// refused with a MambalabError naming the file; a refused import leaves no output behind.
import { closeSync, cpSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { importCheckpoint } from '../../../../kernel/src/models/import/import.js';
import { readTorchCheckpoint } from '../../../../kernel/src/models/import/torch-pickle.js';
import { readZipDirectory } from '../../../../kernel/src/models/import/zip.js';
import { loadModel } from '../../../../kernel/src/models/model.js';
import { fuzzTargets, judgeRead, type FuzzTarget } from '../../../support/fuzz.js';
import { mutateJson, mutateSafetensors, mutateTorchZip, pick, writeMutated } from '../../../support/mutate.js';
import { writeCheckpoints } from './checkpoints.js';

/** data.pkl's byte range in a torch.save archive. */
function pickleRange(file: string): { offset: number; size: number } {
  const fd = openSync(file, 'r');
  try {
    const entries = readZipDirectory(fd, fstatSync(fd).size, (why) => {
      throw new Error(why);
    });
    return [...entries.values()].find((e) => e.name.endsWith('/data.pkl'))!;
  } finally {
    closeSync(fd);
  }
}

interface Original {
  bytes: Buffer;
  pickle: { offset: number; size: number };
  key?: string;
}

const torchPickle: FuzzTarget = {
  name: 'torch-pickle',
  cases: 600,
  setup(dir) {
    writeCheckpoints([
      { layout: 'mamba-ssm', dir: join(dir, 'ssm'), dtype: 'float16' },
      { layout: 'blackmamba', dir: join(dir, 'bm'), dtype: 'bfloat16' },
    ]);
    const originals: Original[] = [
      { file: join(dir, 'ssm', 'pytorch_model.bin') },
      { file: join(dir, 'bm', 'pytorch_model.bin'), key: 'model' },
    ].map(({ file, key }) => ({ bytes: readFileSync(file), pickle: pickleRange(file), key }));
    return (rand, caseDir) => {
      const file = join(caseDir, 'pytorch_model.bin');
      const original = pick(rand, originals);
      const what = writeMutated(rand, file, () => mutateTorchZip(rand, original.bytes, original.pickle));
      return judgeRead(
        what,
        [file],
        () => {
          const source = readTorchCheckpoint(file, original.key);
          return [...source.tensors.values()].map((t) => ({ t, values: t.read() }));
        },
        (read) => {
          for (const { t, values } of read) {
            if (values.length !== t.shape.reduce((a, b) => a * b, 1)) return `tensor ${t.name} read ${values.length} values for shape [${t.shape}]`;
            if (values.some((v) => !Number.isFinite(v))) return `tensor ${t.name} holds a value that is not finite`;
          }
          return undefined;
        },
      );
    };
  },
};

const importer: FuzzTarget = {
  name: 'import',
  cases: 400,
  setup(dir) {
    const sources = { hf: join(dir, 'hf'), ssm: join(dir, 'ssm'), bm: join(dir, 'bm') };
    writeCheckpoints([
      { layout: 'hf-mamba', dir: sources.hf, dtype: 'bfloat16' },
      { layout: 'mamba-ssm', dir: sources.ssm, dtype: 'float32' },
      { layout: 'blackmamba', dir: sources.bm, dtype: 'bfloat16' },
    ]);
    const ranges = { ssm: pickleRange(join(sources.ssm, 'pytorch_model.bin')), bm: pickleRange(join(sources.bm, 'pytorch_model.bin')) };
    return (rand, caseDir) => {
      const which = pick(rand, ['hf', 'ssm', 'bm'] as const);
      const src = join(caseDir, 'source');
      cpSync(sources[which], src, { recursive: true });
      const config = join(src, 'config.json');
      const weights = join(src, which === 'hf' ? 'model.safetensors' : 'pytorch_model.bin');
      let what: string;
      if (rand.next() < 0.5) {
        const text = readFileSync(config, 'utf8');
        what = `${which} config.json: ${writeMutated(rand, config, () => mutateJson(rand, JSON.parse(text), text))}`;
      } else {
        const bytes = readFileSync(weights);
        what = `${which} weights: ${writeMutated(rand, weights, () => (which === 'hf' ? mutateSafetensors(rand, bytes) : mutateTorchZip(rand, bytes, ranges[which])))}`;
      }
      const out = join(caseDir, 'out');
      return judgeRead(
        what,
        [config, weights, src],
        () => {
          try {
            importCheckpoint(src, out);
          } catch (error) {
            const left = readdirSync(caseDir).filter((name) => name !== 'source');
            if (left.length > 0) throw new Error(`a refused import left ${left.join(', ')} behind`);
            throw error;
          }
          return loadModel(out);
        },
        (model) => {
          for (const { name } of model.parameters()) {
            if (model.getParameter(name).some((v) => !Number.isFinite(v))) return `parameter ${name} holds a value that is not finite`;
          }
          return undefined;
        },
      );
    };
  },
};

fuzzTargets(import.meta.filename, [torchPickle, importer]);

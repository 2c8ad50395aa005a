// Fuzzing the readers of model files: safetensors (readSafetensors) and saved models
// (loadModel: config.json + model.safetensors), from files our own writers made.
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { CONFIG_FILE, createModel, loadModel, WEIGHTS_FILE, type Model } from '../../../kernel/src/models/model.js';
import { readSafetensors, writeSafetensors, type SafetensorsFile } from '../../../kernel/src/models/safetensors.js';
import { fuzzTargets, judgeRead, type FuzzTarget } from '../../support/fuzz.js';
import { mutateJson, mutateSafetensors, pick, writeMutated } from '../../support/mutate.js';
import { TINY_MODEL, TINY_MOE } from '../../support/tiny.js';

/** What a read file must hold to count as read: whole tensors of finite numbers, string metadata. */
function safetensorsProblem(file: SafetensorsFile): string | undefined {
  for (const [key, value] of Object.entries(file.metadata)) if (typeof value !== 'string') return `metadata ${key} is ${JSON.stringify(value)}`;
  for (const { name, shape, data } of file.tensors.values()) {
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return `tensor ${name} has shape ${JSON.stringify(shape)}`;
    if (shape.reduce((a, b) => a * b, 1) !== data.length) return `tensor ${name} has ${data.length} values for shape [${shape}]`;
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) return `tensor ${name} holds ${data[bad]} at ${bad}`;
  }
  return undefined;
}

function modelProblem(model: Model): string | undefined {
  for (const { name } of model.parameters()) {
    const values = model.getParameter(name);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) return `parameter ${name} holds ${values[bad]} at ${bad}`;
  }
  return undefined;
}

const safetensors: FuzzTarget = {
  name: 'safetensors',
  cases: 1000,
  setup(dir) {
    createModel(TINY_MOE).save(dir);
    const f64 = join(dir, 'f64.safetensors');
    writeSafetensors(f64, [
      { name: 'scalar', shape: [], data: Float64Array.from([Math.PI]) },
      { name: 'empty', shape: [0, 3], data: new Float64Array(0) },
      { name: 'w', shape: [2, 3], data: Float64Array.from([1, -2, 3.5, 1e-300, -0, 7]) },
    ], { note: 'fuzz' });
    const originals = [readFileSync(join(dir, WEIGHTS_FILE)), readFileSync(f64)];
    return (rand, caseDir) => {
      const file = join(caseDir, 'weights.safetensors');
      const original = pick(rand, originals);
      const what = writeMutated(rand, file, () => mutateSafetensors(rand, original));
      return judgeRead(what, [file], () => readSafetensors(file), safetensorsProblem);
    };
  },
};

const savedModel: FuzzTarget = {
  name: 'loadModel',
  cases: 500,
  setup(dir) {
    const saved = [join(dir, 'mamba'), join(dir, 'moe')];
    createModel(TINY_MODEL).save(saved[0]!);
    createModel(TINY_MOE).save(saved[1]!);
    return (rand, caseDir) => {
      const source = pick(rand, saved);
      const model = join(caseDir, 'model');
      cpSync(source, model, { recursive: true });
      const config = join(model, CONFIG_FILE);
      const weights = join(model, WEIGHTS_FILE);
      const target = pick(rand, ['config', 'config', 'weights', 'weights', 'directory']);
      let what: string;
      let named: string[];
      if (target === 'config') {
        const original = readFileSync(config, 'utf8');
        what = `${CONFIG_FILE}: ${writeMutated(rand, config, () => mutateJson(rand, JSON.parse(original), original))}`;
        named = [config];
      } else if (target === 'weights') {
        const original = readFileSync(weights);
        what = `${WEIGHTS_FILE}: ${writeMutated(rand, weights, () => mutateSafetensors(rand, original))}`;
        named = [weights];
      } else {
        what = `the model directory: ${writeMutated(rand, model, () => ({ what: 'a file in place of the directory', value: Buffer.from('{}') }))}`;
        named = [model];
      }
      return judgeRead(what, named, () => loadModel(model), modelProblem);
    };
  },
};

fuzzTargets(import.meta.filename, [safetensors, savedModel]);

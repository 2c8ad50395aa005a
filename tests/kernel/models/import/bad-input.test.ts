// Checkpoints an importer must refuse: an architecture it does not import, a tensor missing or
// of the wrong shape, a config it cannot represent exactly, a pickle that calls code, a file
// cut short, values that are not finite. Each error names the file and what is wrong, and
// nothing is written: no output directory, no temporary one, an existing one untouched.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';

import { MambalabError } from '../../../../kernel/src/errors.js';
import { importCheckpoint } from '../../../../kernel/src/models/import/import.js';
import { scratchDir } from '../../../helpers.js';
import { python, writeCheckpoints } from './checkpoints.js';

const root = scratchDir();
const sources = { hf: join(root, 'hf'), ssm: join(root, 'ssm'), bm: join(root, 'bm') };

before(() => {
  writeCheckpoints([
    { layout: 'hf-mamba', dir: sources.hf, dtype: 'float32' },
    { layout: 'mamba-ssm', dir: sources.ssm, dtype: 'float32' },
    { layout: 'blackmamba', dir: sources.bm, dtype: 'bfloat16' },
  ]);
  // Damaged copies, made by PyTorch in one run: a state dict missing a tensor, one with a
  // tensor of the wrong shape, one holding NaN, one whose pickle calls os.system, a legacy file.
  python(
    `
import os, sys, torch
from safetensors.torch import load_file, save_file
root = sys.argv[1]
def copy(src, dst, edit):
    os.makedirs(dst)
    with open(os.path.join(src, "config.json")) as f: config = f.read()
    with open(os.path.join(dst, "config.json"), "w") as f: f.write(config)
    sd = torch.load(os.path.join(src, "pytorch_model.bin"), weights_only=True)
    edit(sd)
    torch.save(sd, os.path.join(dst, "pytorch_model.bin"))
copy(os.path.join(root, "ssm"), os.path.join(root, "missing"), lambda sd: sd.pop("backbone.layers.1.mixer.x_proj.weight"))
copy(os.path.join(root, "ssm"), os.path.join(root, "nan"), lambda sd: sd["backbone.layers.1.mixer.D"].__setitem__(3, float("nan")))
class Code:
    def __reduce__(self): return (os.system, ("echo this pickle ran code",))
copy(os.path.join(root, "ssm"), os.path.join(root, "code"), lambda sd: sd.__setitem__("backbone.norm_f.weight", Code()))
copy(os.path.join(root, "ssm"), os.path.join(root, "legacy"), lambda sd: None)
sd = torch.load(os.path.join(root, "legacy", "pytorch_model.bin"), weights_only=True)
torch.save(sd, os.path.join(root, "legacy", "pytorch_model.bin"), _use_new_zipfile_serialization=False)
os.makedirs(os.path.join(root, "shape"))
sd = load_file(os.path.join(root, "hf", "model.safetensors"))
sd["backbone.layers.0.mixer.A_log"] = torch.zeros(48, 5)
save_file(sd, os.path.join(root, "shape", "model.safetensors"))
`,
    root,
  );
  cpSync(join(sources.hf, 'config.json'), join(root, 'shape', 'config.json'));
});

/** Imports `from` into a fresh out, expecting a MambalabError matching `message` and nothing written. */
function refused(from: string, message: RegExp): void {
  const parent = join(root, `out-${Math.random().toString(36).slice(2)}`);
  mkdirSync(parent);
  const out = join(parent, 'model');
  assert.throws(
    () => importCheckpoint(from, out),
    (e: unknown) => {
      assert.ok(e instanceof MambalabError, `not a MambalabError: ${String(e)}`);
      assert.match(e.message, message);
      return true;
    },
  );
  assert.deepEqual(readdirSync(parent), [], 'the failed import wrote nothing');
}

function withConfig(source: string, name: string, edit: (config: Record<string, unknown>) => void): string {
  const dir = join(root, name);
  cpSync(source, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  edit(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

test('an architecture the importer does not know is named', () => {
  const dir = withConfig(sources.hf, 'llama', (c) => {
    for (const k of Object.keys(c)) delete c[k];
    Object.assign(c, { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 24 });
  });
  refused(dir, /llama.*config\.json describes the architecture \["LlamaForCausalLM"\]; mambalab imports transformers' MambaForCausalLM/);
  refused(join(root, 'nowhere'), /nowhere is not a directory/);
});

test('a missing tensor and a tensor of the wrong shape are named', () => {
  refused(join(root, 'missing'), /missing\/pytorch_model\.bin has no tensor backbone\.layers\.1\.mixer\.x_proj\.weight \(expected shape \[10,48\]\)/);
  refused(join(root, 'shape'), /tensor backbone\.layers\.0\.mixer\.A_log in .*shape\/model\.safetensors has shape \[48,5\], expected \[48,4\]/);
});

test('config fields mambalab cannot represent exactly are refused, naming the field', () => {
  refused(withConfig(sources.hf, 'hf-bias', (c) => delete c['use_bias']), /hf-bias\/config\.json: use_bias \(absent, so its default\) puts biases on in_proj and out_proj/);
  refused(withConfig(sources.ssm, 'ssm-layernorm', (c) => (c['rms_norm'] = false)), /ssm-layernorm\/config\.json: rms_norm false makes every norm a LayerNorm/);
  refused(withConfig(sources.ssm, 'ssm-mamba2', (c) => (c['ssm_cfg'] = { layer: 'Mamba2' })), /ssm-mamba2\/config\.json \(ssm_cfg\): layer "Mamba2" is not the Mamba1 block/);
  refused(withConfig(sources.bm, 'bm-bias', (c) => (c['add_bias_linear'] = true)), /bm-bias\/config\.json: add_bias_linear true puts biases on in_proj, out_proj/);
  refused(withConfig(sources.bm, 'bm-parallel', (c) => (c['mamba_moe_layers'] = ['r', 'r8', 'r', '1'])), /bm-parallel\/config\.json: mamba_moe_layers\[1\] is "r8", a Mamba block with a parallel MLP/);
  refused(withConfig(sources.bm, 'bm-layers', (c) => (c['num_layers'] = 5)), /bm-layers\/config\.json: mamba_moe_layers is .*, expected a list of num_layers \(5\) entries/);
  refused(withConfig(sources.hf, 'hf-hidden', (c) => (c['hidden_size'] = 'big')), /hf-hidden\/config\.json: field hidden_size is "big", expected an integer/);
  // A layer the config leaves out leaves its tensors unplaced.
  refused(withConfig(sources.ssm, 'ssm-fewer', (c) => (c['n_layer'] = 1)), /ssm-fewer\/pytorch_model\.bin holds tensors mambalab's model has no place for: backbone\.layers\.1\./);
});

test('a pickle that calls code is refused before anything runs', () => {
  refused(join(root, 'code'), /code\/pytorch_model\.bin is not a PyTorch checkpoint mambalab can read: data\.pkl refers to the Python global '(posix|os)\.system'/);
});

test('a truncated or legacy .bin, and values that are not finite, are refused naming the file', () => {
  const cut = join(root, 'cut');
  cpSync(sources.bm, cut, { recursive: true });
  truncateSync(join(cut, 'pytorch_model.bin'), 20_000);
  refused(cut, /cut\/pytorch_model\.bin is not a PyTorch checkpoint mambalab can read: it is not a zip archive \(no end-of-directory record\)/);
  refused(join(root, 'legacy'), /legacy\/pytorch_model\.bin .*legacy format of PyTorch before 1\.6/);
  // Found while the output is written: the temporary directory goes too.
  refused(join(root, 'nan'), /tensor backbone\.layers\.1\.mixer\.D in .*nan\/pytorch_model\.bin holds NaN at index 3/);
});

test('an output directory that holds anything is left as it is', () => {
  const out = join(root, 'taken');
  mkdirSync(out);
  writeFileSync(join(out, 'notes.txt'), 'mine');
  assert.throws(() => importCheckpoint(sources.hf, out), /--out .*taken is not empty; the import writes a new directory and replaces nothing/);
  assert.deepEqual(readdirSync(out), ['notes.txt']);
  rmSync(join(out, 'notes.txt'));
  importCheckpoint(sources.hf, out); // empty: taken
  assert.ok(existsSync(join(out, 'model.safetensors')));
});

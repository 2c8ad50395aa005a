import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Notebook } from '../../../kernel/src/notebook/ipynb.js';
import { injectParameters, parametersSource, parseParameters } from '../../../kernel/src/notebook/params.js';

test('parseParameters: numbers and booleans stay numbers and booleans, anything else is a string', () => {
  assert.deepEqual(parseParameters(['scale=ci', 'steps=200', 'lr=1e-3', 'neg=-0.5', 'deterministic=true', 'cuda=false', 'name=', 'path=a=b', 'v=1.2.3', 'pad= 1']), {
    scale: 'ci',
    steps: 200,
    lr: 0.001,
    neg: -0.5,
    deterministic: true,
    cuda: false,
    name: '',
    path: 'a=b',
    v: '1.2.3',
    pad: ' 1',
  });
  assert.deepEqual(parseParameters([]), {});
});

test('parseParameters names what is wrong with a bad --param', () => {
  assert.throws(() => parseParameters(['scale']), /--param "scale": expected key=value, e\.g\. --param scale=ci/);
  assert.throws(() => parseParameters(['=ci']), /--param "=ci": "" is not a variable name/);
  assert.throws(() => parseParameters(['2x=1']), /"2x" is not a variable name/);
  assert.throws(() => parseParameters(['a-b=1']), /"a-b" is not a variable name/);
  assert.throws(() => parseParameters(['scale=ci', 'scale=paper']), /--param scale is given twice/);
});

test('parametersSource declares each value with its plain type', () => {
  assert.equal(parametersSource({ scale: 'paper', steps: 10, cuda: true, quote: 'it\'s "x"' }), [
    'const scale: string = "paper";',
    'const steps: number = 10;',
    'const cuda: boolean = true;',
    'const quote: string = "it\'s \\"x\\"";',
  ].join('\n'));
});

function notebook(): Notebook {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'mambalab' } },
    cells: [
      { cell_type: 'markdown', id: 'm', metadata: {}, source: '# title' },
      { cell_type: 'code', id: 'imports', metadata: {}, source: "import { preset } from 'mambalab';", outputs: [], execution_count: null },
      { cell_type: 'code', id: 'params', metadata: { tags: ['parameters'] }, source: "const scale: string = 'ci';", outputs: [], execution_count: null },
      { cell_type: 'code', id: 'use', metadata: {}, source: 'console.log(scale);', outputs: [], execution_count: null },
    ],
  };
}

test('injectParameters puts a cell tagged injected-parameters right after the parameters cell', () => {
  const nb = notebook();
  const injected = injectParameters(nb, { scale: 'paper', steps: 5 });
  assert.deepEqual(injected.cells.map((c) => c.id), ['m', 'imports', 'params', 'injected-parameters', 'use']);
  const cell = injected.cells[3]!;
  assert.equal(cell.cell_type, 'code');
  assert.deepEqual(cell.metadata.tags, ['injected-parameters']);
  assert.equal(cell.source, '// Parameters (mambalab notebook run --param)\nconst scale: string = "paper";\nconst steps: number = 5;');
  assert.equal(nb.cells.length, 4, 'the input notebook is not changed');
  assert.deepEqual(injected.metadata, nb.metadata);
  // An executed notebook run again: its injected cell is replaced, not added to.
  const again = injectParameters(injected, { scale: 'ci' });
  assert.deepEqual(again.cells.map((c) => c.id), ['m', 'imports', 'params', 'injected-parameters', 'use']);
  assert.equal(again.cells[3]!.source, '// Parameters (mambalab notebook run --param)\nconst scale: string = "ci";');
});

test('injectParameters without parameters leaves the notebook alone; with some, it needs a parameters cell', () => {
  const nb = notebook();
  assert.equal(injectParameters(nb, {}), nb);
  nb.cells[2]!.metadata = {};
  assert.throws(() => injectParameters(nb, { scale: 'paper' }), /--param given, but no code cell is tagged "parameters"/);
});

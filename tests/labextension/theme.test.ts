import assert from 'node:assert/strict';
import { test } from 'node:test';
import { baseLayout, plotTheme, runColor } from '../../labextension/src/theme.js';

test('colours come from the JupyterLab theme variables when present', () => {
  const vars: Record<string, string> = { '--jp-ui-font-color1': ' rgba(255,255,255,1) ', '--jp-ui-font-family': 'Inter' };
  const theme = plotTheme((name) => vars[name] ?? '', true);
  assert.equal(theme.text, 'rgba(255,255,255,1)');
  assert.equal(theme.font, 'Inter');
  assert.equal(baseLayout(theme).font!.color, 'rgba(255,255,255,1)');
  assert.equal(baseLayout(theme).paper_bgcolor, 'rgba(0,0,0,0)', 'transparent: the output area shows through');
});

test('without variables each theme has readable defaults, and run colours differ per theme', () => {
  const light = plotTheme(() => '', false);
  const dark = plotTheme(() => '', true);
  assert.notEqual(light.text, dark.text);
  assert.notEqual(runColor(light, 0), runColor(dark, 0));
  assert.equal(runColor(light, 10), runColor(light, 0), 'colours cycle');
});

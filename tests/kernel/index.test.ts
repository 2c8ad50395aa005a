// The public API (kernel/src/index.ts) and its README section ("Public API") name the same
// exports: the table its values, the "Types" paragraph its types.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import ts from 'typescript';

import { repoRoot } from '../helpers.js';

const INDEX = join(repoRoot, 'kernel', 'src', 'index.ts');

/** Names index.ts exports, values apart from types. */
function indexExports(): { values: string[]; types: string[] } {
  const source = ts.createSourceFile(INDEX, readFileSync(INDEX, 'utf8'), ts.ScriptTarget.Latest);
  const values: string[] = [];
  const types: string[] = [];
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement) || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) continue;
    for (const element of statement.exportClause.elements) {
      (statement.isTypeOnly || element.isTypeOnly ? types : values).push(element.name.text);
    }
  }
  return { values: values.sort(), types: types.sort() };
}

/** Names the README's "Public API" section documents: `name(...)` or `Name` in backticks. */
function documented(): { values: string[]; types: string[] } {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Public API\n'), readme.indexOf('\n## ', readme.indexOf('\n## Public API\n') + 1));
  const names = (text: string) => [...text.matchAll(/`([A-Za-z0-9_]+)(\(|`)/g)].map((m) => m[1]!);
  const table = section.split('\n').filter((line) => line.startsWith('| `'));
  const typesParagraph = section.slice(section.indexOf('Types,'));
  return { values: names(table.map((line) => line.split('|')[1]!).join(' ')).sort(), types: names(typesParagraph).sort() };
}

test('the README documents every export of the public API, and nothing else', () => {
  const { values, types } = indexExports();
  assert.ok(values.length > 5 && types.length > 5, 'index.ts was read');
  assert.deepEqual(documented(), { values, types });
});

test('the public API module exports those values at run time', async () => {
  const api = await import('../../kernel/src/index.js');
  assert.deepEqual(Object.keys(api).sort(), indexExports().values);
});

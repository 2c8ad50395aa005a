#!/usr/bin/env node
// `npm test`: every test group in turn with Node's test runner (TypeScript through tsx).
// `node scripts/run-tests.mjs unit` (or any group names) runs only those groups.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

// Test files under tests/, by group. GPU tests run on the GPU host (tests/gpu/run.sh).
const GROUPS = {
  unit: (file) => !['tests/browser/', 'tests/gpu/', 'tests/notebooks/'].some((dir) => file.startsWith(dir)),
  // The paper notebooks at scale=ci, through `mambalab notebook run` (alone: `npm run test:notebooks`).
  notebooks: (file) => file.startsWith('tests/notebooks/'),
  browser: (file) => file.startsWith('tests/browser/'),
};

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : testFiles(path);
    return name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

const all = testFiles(join(root, 'tests')).sort();
const wanted = process.argv.slice(2);
for (const name of wanted) if (!(name in GROUPS)) throw new Error(`unknown test group '${name}' (groups: ${Object.keys(GROUPS)})`);
// tsx strips types without checking them: the whole tree (sources and tests) is
// type-checked first, in strict mode. (node_modules/.bin/tsc may be tslab's older compiler.)
console.log('# type check (tsc --noEmit)');
const typecheck = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], {
  stdio: 'inherit',
});
let failed = typecheck.status !== 0;
if (failed) console.log('not ok - type check failed (see above)');
for (const [group, includes] of Object.entries(GROUPS)) {
  if (wanted.length > 0 && !wanted.includes(group)) continue;
  const files = all.filter(includes);
  if (files.length === 0) continue;
  console.log(`\n# ${group} tests (${files.length} files)`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);

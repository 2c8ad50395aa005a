// Runs the native test program (tests/native/**/*.cpp, built with the addon) and reports
// each of its cases as a test here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const binary = join(import.meta.dirname, '..', 'native', 'build', 'mambalab_native_tests');

test('native engine', async (t) => {
  assert.ok(existsSync(binary), `${binary} is missing: run npm install (it builds the engine and its tests)`);
  const run = spawnSync(binary, [], { encoding: 'utf8', timeout: 10 * 60_000 });
  const lines = run.stdout.split('\n').filter((l) => l.startsWith('ok ') || l.startsWith('not ok '));
  assert.ok(lines.length > 0, `the native test program printed no results:\n${run.stdout}\n${run.stderr}`);
  for (const line of lines) {
    const ok = line.startsWith('ok ');
    const [name, ...detail] = line.slice(ok ? 3 : 7).split(': ');
    await t.test(name!, () => assert.ok(ok, detail.join(': ')));
  }
  assert.equal(run.status, 0, `native tests exited with ${run.status}${run.signal ? ` (signal ${run.signal})` : ''}`);
});

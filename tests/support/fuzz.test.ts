// The fuzz harness catches what it is for: wrong answers, hangs and crashes, each named with its
// case and how to replay it; and it passes a reader that only refuses as it should.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const fixture = join(import.meta.dirname, 'fuzz-fixture.ts');

/** The TAP output of the fixture's targets (names separated by commas). */
function run(targets: string): { status: number | null; output: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, FUZZ_TARGET: targets, FUZZ_HANG_MS: '2000', FUZZ_SEED: '5' };
  delete env['NODE_TEST_CONTEXT'];
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', fixture], { env, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, output: result.stdout + result.stderr };
}

test('refusals with the file named pass, with the case count and seed; wrong answers fail, each named with its case', () => {
  const { status, output } = run('refuses,reads,misbehaves');
  assert.notEqual(status, 0);
  assert.match(output, /^ok \d+ - fuzz: refuses$/m);
  assert.match(output, /refuses: 5 cases, seed 5: 0 read, 5 refused/);
  assert.match(output, /FUZZ_SEED=5 FUZZ_TARGET=refuses FUZZ_CASE=<index>/);
  assert.match(output, /^not ok \d+ - fuzz: reads$/m);
  assert.match(output, /no case was refused/);
  assert.match(output, /^not ok \d+ - fuzz: misbehaves$/m);
  assert.match(output, /case \d \(a number\): threw SyntaxError: .*, not a MambalabError/);
  assert.match(output, /case \d \(a number\): the message names none of .*: elsewhere: not a file this reader takes/);
});

test('a case that hangs is killed and named', () => {
  const { status, output } = run('hangs');
  assert.notEqual(status, 0);
  assert.match(output, /hangs did not finish: hangs: case 2: a loop still running after 2 s: a hang/);
});

test('a case that takes the process down is named with how it ended', () => {
  const { status, output } = run('dies');
  assert.notEqual(status, 0);
  assert.match(output, /dies did not finish: the process ended \(SIGKILL\) in dies: case 3: a kill/);
});

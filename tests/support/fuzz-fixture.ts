// Targets that go wrong in each way the fuzz harness must catch, for tests/support/fuzz.test.ts
// (which runs this file as a test file, one target at a time).
import { MambalabError } from '../../kernel/src/errors.js';
import { fuzzTargets, judgeRead, type FuzzTarget } from './fuzz.js';

const refuses = (file: string) => () => {
  throw new MambalabError(`${file}: not a file this reader takes`);
};

const targets: FuzzTarget[] = [
  { name: 'refuses', cases: 5, setup: () => (_, dir) => judgeRead('nothing', [dir], refuses(dir)) },
  { name: 'reads', cases: 5, setup: () => (_, dir) => judgeRead('nothing', [dir], () => 1) },
  {
    name: 'misbehaves',
    cases: 5,
    setup: () => (rand, dir) =>
      judgeRead('a number', [dir], rand.next() < 0.5 ? () => JSON.parse('{') : refuses('elsewhere'), (value) => (value === 1 ? undefined : 'not 1')),
  },
  {
    name: 'hangs',
    cases: 5,
    setup: () => {
      let n = 0;
      return (_, dir) => judgeRead('a loop', [dir], n++ === 2 ? () => { for (;;); } : refuses(dir));
    },
  },
  {
    // As a native abort would, without leaving a core file.
    name: 'dies',
    cases: 5,
    setup: () => {
      let n = 0;
      return (_, dir) => judgeRead('a kill', [dir], n++ === 3 ? () => process.kill(process.pid, 'SIGKILL') : refuses(dir));
    },
  },
];

fuzzTargets(import.meta.filename, targets);

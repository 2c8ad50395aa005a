// `mambalab bench <name>`: benchmarks that print their measurements as JSON (--json) and can
// write them to a file for bench/results/ (--out). Add a bench to BENCHES.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { sharedDatasetsDir } from '../data/paths.js';
import { benchTokenize } from '../data/throughput.js';
import { defaultNeoxTokenizerFile } from '../data/tokenizer.js';
import { MambalabError } from '../errors.js';
import { intFlag, parseFlags } from './args.js';

interface Bench {
  summary: string;
  usage: string;
  /** Runs with the bench's own flags; `log` shows progress on stderr. Returns the results. */
  run: (argv: string[], log: (line: string) => void) => Promise<unknown>;
}

const BENCHES: Record<string, Bench> = {
  tokenize: {
    summary: 'tokenizer MB/s (GPT-2, NeoX) beside HF tokenizers, and the sampler against a training step',
    usage: `  --corpus FILE       JSON-lines corpus (default: the C4 sample in ../shared/datasets)
  --passes N          passes over the corpus (default 2: cold caches, then warm)
  --threads N         our tokenizer's worker threads (default: one per core)
  --tokenizer-file F  GPT-NeoX tokenizer.json (default: the cache's, else ../shared/datasets's)
  --no-sampler        skip the sampler-versus-step timing`,
    run: async (argv, log) => {
      const { values: f } = parseFlags('bench tokenize', argv, {
        corpus: { type: 'string' },
        passes: { type: 'string' },
        threads: { type: 'string' },
        'tokenizer-file': { type: 'string' },
        'no-sampler': { type: 'boolean', default: false },
      });
      const shared = sharedDatasetsDir();
      const corpus = f.corpus ?? (shared && join(shared, 'c4', 'olmo', 'c4-sample.00000-of-00001.json.gz'));
      if (!corpus) throw new MambalabError('bench tokenize: no --corpus given and no C4 sample in ../shared/datasets');
      const neox = f['tokenizer-file'] ?? [defaultNeoxTokenizerFile(), shared && join(shared, 'tokenizers', 'gpt-neox-20b', 'tokenizer.json')].find((p) => p && existsSync(p));
      return benchTokenize({
        corpus,
        passes: intFlag('passes', f.passes, 2, 1),
        threads: f.threads === undefined ? undefined : intFlag('threads', f.threads, 1, 1),
        neoxTokenizerFile: neox,
        sampler: !f['no-sampler'],
        log,
      });
    },
  },
};

export const usage = `mambalab bench <name> [--json] [--out FILE] [bench options]
  --json       print the results as one JSON object on stdout
  --out FILE   also write them to FILE (e.g. bench/results/<date>-cpu-<name>.json)

${Object.entries(BENCHES)
  .map(([name, b]) => `${name}: ${b.summary}\n${b.usage}`)
  .join('\n\n')}`;

export async function bench(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const b = name ? BENCHES[name] : undefined;
  if (!b) throw new MambalabError(`bench: expected one of ${Object.keys(BENCHES).join(', ')}${name ? `, got '${name}'` : ''}`);
  // --json and --out are everyone's; the rest go to the bench.
  const json = rest.includes('--json');
  const outAt = rest.indexOf('--out');
  const out = outAt >= 0 ? rest[outAt + 1] : undefined;
  if (outAt >= 0 && !out) throw new MambalabError('--out: expected a file name');
  const own = rest.filter((a, i) => a !== '--json' && (outAt < 0 || (i !== outAt && i !== outAt + 1)));
  const results = await b.run(own, (line) => process.stderr.write(line + '\n'));
  const text = JSON.stringify(results, null, 2) + '\n';
  if (out) writeFileSync(out, text);
  if (json) process.stdout.write(JSON.stringify(results) + '\n');
  else if (!out) process.stdout.write(text);
}

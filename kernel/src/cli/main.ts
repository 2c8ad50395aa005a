// `mambalab <command>`: the command-line entry point.
import { MambalabError } from '../errors.js';
import { bench, usage as benchUsage } from './bench.js';
import { data, usage as dataUsage } from './data.js';
import { evaluate, usage as evalUsage } from './eval.js';
import { generateCommand, usage as generateUsage } from './generate.js';
import { importCommand, usage as importUsage } from './import.js';
import { kernel, usage as kernelUsage } from './kernel.js';
import { notebook, usage as notebookUsage } from './notebook.js';
import { train, usage as trainUsage } from './train.js';

interface Command {
  summary: string;
  usage: string;
  run: (argv: string[]) => Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  train: { summary: 'train a model on a text corpus (checkpoints, --resume)', usage: trainUsage, run: train },
  eval: { summary: "a saved model's validation loss and perplexity", usage: evalUsage, run: evaluate },
  generate: { summary: 'continue a prompt with a saved model (greedy or sampled), streamed or as JSON', usage: generateUsage, run: generateCommand },
  kernel: { summary: 'install or start the Jupyter kernel "Mamba Lab (TypeScript)"', usage: kernelUsage, run: kernel },
  notebook: { summary: 'run a notebook headlessly on the kernel (--param key=value, --out)', usage: notebookUsage, run: notebook },
  data: { summary: 'fetch C4 / SlimPajama, prepare token shards, describe a dataset', usage: dataUsage, run: data },
  import: { summary: 'import published Mamba / BlackMamba weights from local files', usage: importUsage, run: importCommand },
  bench: { summary: 'benchmarks (train, generate, tokenize, ...), with results as JSON', usage: benchUsage, run: bench },
};

function help(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: mambalab <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nmambalab <command> --help for its options`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`mambalab: unknown command '${name}'\n${help()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage + '\n');
    return 0;
  }
  await command.run(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof MambalabError) {
      process.stderr.write(`mambalab: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`mambalab: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);

// The C4 slice notebooks and `npm start` train on by default, prepared once into the cache:
//   online, on first use: C4 en validation shard 0 (45.6k documents, ~41 MB gzip), fetched
//     and prepared into <data dir>/prepared/c4-en-validation-00000-<tokenizer>;
//   offline: the 1000-document C4 sample committed in the repository (datasets/c4),
//     prepared into <data dir>/prepared/c4-sample-<tokenizer>.
// Once the larger slice is there it is used; until then every call tries to fetch it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { openDataset, type Dataset } from '../data/dataset.js';
import { isPrepared } from '../data/manifest.js';
import { MambalabError } from '../errors.js';
import { fetchC4 } from './fetch.js';
import { C4_SAMPLE_FILE, dataDir } from './paths.js';
import { prepare } from './prepare.js';
import type { TokenizerName } from './tokenizer.js';

export interface C4SliceOptions {
  tokenizer?: TokenizerName;
  tokenizerFile?: string;
  /** Never use the network (default: true when $MAMBALAB_OFFLINE is 1). */
  offline?: boolean;
  validationFraction?: number;
  /** Where progress and the choice made go (default: stderr). */
  log?: (line: string) => void;
}

export async function defaultC4Slice(options: C4SliceOptions = {}): Promise<Dataset> {
  const tokenizer = options.tokenizer ?? 'gpt2';
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const offline = options.offline ?? process.env.MAMBALAB_OFFLINE === '1';
  const prepared = join(dataDir(), 'prepared');
  const open = (dir: string) => openDataset(dir, { validationFraction: options.validationFraction });
  const ensure = async (dir: string, inputs: string[]) => {
    log(`preparing ${dir} (${tokenizer} tokens) from ${inputs.join(', ')}`);
    await prepare({ inputs, out: dir, tokenizer, tokenizerFile: options.tokenizerFile });
  };

  const validation = join(prepared, `c4-en-validation-00000-${tokenizer}`);
  if (isPrepared(validation)) return open(validation);
  if (!offline) {
    try {
      let shown = -1;
      const { files } = await fetchC4(
        { variant: 'en', split: 'validation', shards: [0] },
        {
          onProgress: (p) => {
            const tenth = Math.floor((10 * p.bytesDone) / Math.max(1, p.bytesTotal));
            if (tenth !== shown) log(`fetching C4 en validation shard 0: ${(shown = tenth) * 10}%`);
          },
        },
      );
      await ensure(validation, files);
      return open(validation);
    } catch (e) {
      if (!(e instanceof MambalabError)) throw e;
      log(`could not fetch C4 validation shard 0 (${e.message.split('\n')[0]}); using the offline C4 sample`);
    }
  }

  const sample = join(prepared, `c4-sample-${tokenizer}`);
  if (!isPrepared(sample)) {
    // Only a copy of the package without the repository's datasets/ lacks it.
    if (!existsSync(C4_SAMPLE_FILE)) {
      throw new MambalabError(
        `no C4 slice: C4 validation shard 0 could not be fetched and the offline C4 sample (${C4_SAMPLE_FILE}) is missing. ` +
          "Online, run 'mambalab data fetch c4 --split validation --shards 0'; or prepare any JSON-lines corpus with 'mambalab data prepare'",
      );
    }
    await ensure(sample, [C4_SAMPLE_FILE]);
  }
  return open(sample);
}

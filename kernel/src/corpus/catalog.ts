// The corpora mambalab knows: where their files live on the Hugging Face Hub, what their files
// are called, and their licences (carried into every prepared shard).

export interface Corpus {
  name: 'c4' | 'slimpajama';
  /** Hugging Face dataset repository. */
  repo: string;
  title: string;
  license: string;
  /** Recognizes the corpus's files by name (for `prepare`'s provenance). */
  filePattern: RegExp;
}

export const C4: Corpus = {
  name: 'c4',
  repo: 'allenai/c4',
  title: 'C4 (allenai/c4)',
  license: 'ODC-BY 1.0; the text is also subject to the Common Crawl terms of use',
  filePattern: /^c4-(train|validation|sample)\.\d{5}-of-\d{5}\.json(l)?(\.gz)?$/,
};

export const SLIMPAJAMA: Corpus = {
  name: 'slimpajama',
  repo: 'cerebras/SlimPajama-627B',
  title: 'SlimPajama-627B (cerebras/SlimPajama-627B)',
  license:
    "each RedPajama subset's own: Common Crawl terms of use (RedPajamaCommonCrawl, RedPajamaC4 also ODC-BY 1.0), " +
    'GitHub MIT/BSD/Apache repositories, Books (PG-19, public domain), arXiv terms of use, Wikipedia and StackExchange CC BY-SA',
  filePattern: /^example_(train|holdout)_\d+\.jsonl(\.zst)?$/,
};

const CORPORA = [C4, SLIMPAJAMA];

/** The one known corpus all these file names belong to, if there is one. */
export function recognize(fileNames: string[]): Corpus | undefined {
  return CORPORA.find((c) => fileNames.length > 0 && fileNames.every((f) => c.filePattern.test(f)));
}

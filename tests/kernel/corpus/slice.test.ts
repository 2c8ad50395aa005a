import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { c4Lines, c4SampleRecords } from '../../../datasets/fixtures.js';
import { defaultC4Slice } from '../../../kernel/src/corpus/slice.js';
import { scratchDir } from '../../helpers.js';
import { closedPort, startHub } from './hub-server.js';

function withEnv(vars: Record<string, string>): void {
  Object.assign(process.env, vars);
}

test('defaultC4Slice offline: prepares the C4 sample once into the cache, then opens it', async () => {
  const cache = scratchDir();
  withEnv({ MAMBALAB_DATA_DIR: cache });
  const log: string[] = [];
  const first = await defaultC4Slice({ offline: true, log: (l) => log.push(l) });
  assert.equal(first.dir, join(cache, 'prepared', 'c4-sample-gpt2'));
  assert.equal(first.info().documents, 1000);
  assert.equal(log.length, 1);
  assert.match(log[0]!, /^preparing .*c4-sample-gpt2 \(gpt2 tokens\) from .*c4-sample\.00000-of-00001\.json\.gz$/);
  const again = await defaultC4Slice({ offline: true, log: (l) => log.push(l) });
  assert.equal(log.length, 1, 'nothing prepared the second time');
  assert.deepEqual(again.info(), first.info());
});

test('defaultC4Slice online: fetches C4 validation shard 0 and prepares it; unreachable, it falls back to the sample', async () => {
  const records = c4SampleRecords().slice(0, 300);
  const hub = await startHub([{ type: 'dataset', repo: 'allenai/c4', files: [{ path: 'en/c4-validation.00000-of-00008.json.gz', bytes: gzipSync(c4Lines(records)) }] }]);
  const cache = scratchDir();
  withEnv({ MAMBALAB_DATA_DIR: cache, HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}` });
  const log: string[] = [];
  const fallback = await defaultC4Slice({ offline: false, log: (l) => log.push(l) });
  assert.equal(fallback.info().documents, 1000);
  assert.match(log[0]!, /^could not fetch C4 validation shard 0 \(cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\).*using the offline C4 sample$/);

  withEnv({ HF_ENDPOINT: hub.endpoint });
  const online = await defaultC4Slice({ offline: false, log: (l) => log.push(l) });
  assert.equal(online.dir, join(cache, 'prepared', 'c4-en-validation-00000-gpt2'));
  assert.equal(online.info().documents, 300);
  assert.ok(log.some((l) => /fetching C4 en validation shard 0: 100%/.test(l)));
  const requests = hub.requests.length;
  assert.equal((await defaultC4Slice({ offline: false, log: () => {} })).info().documents, 300);
  assert.equal(hub.requests.length, requests, 'once prepared, no request is made');
});

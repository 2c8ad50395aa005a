// Arrow IPC files as we write them (token shards, a run's metrics), read through the file's
// footer one record batch at a time. apache-arrow's table reader (tableFromIPC) loops forever
// when a damaged footer points a record batch at a message of another kind, so it is not used.
import { readFileSync } from 'node:fs';

import { RecordBatchReader, Table } from 'apache-arrow';

import { MambalabError } from '../errors.js';

/**
 * The table an Arrow IPC file holds. Whatever keeps it from being read (no such file, not the
 * IPC file format, a damaged message) becomes `failure(why)`, which names the file.
 */
export function readArrowFile(path: string, failure: (why: string) => MambalabError): Table {
  try {
    const reader = RecordBatchReader.from(readFileSync(path));
    if (!reader.isFile()) throw failure('the bytes are not the Arrow IPC file format (its ARROW1 magic and footer)');
    reader.open();
    const batches = Array.from({ length: reader.numRecordBatches }, (_, i) => {
      const batch = reader.readRecordBatch(i);
      if (!batch) throw failure(`its footer's record batch ${i} is not a record batch`);
      return batch;
    });
    return new Table(reader.schema, batches);
  } catch (e) {
    throw e instanceof MambalabError ? e : failure((e as Error).message);
  }
}

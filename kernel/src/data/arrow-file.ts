// Arrow IPC files as we write them (token shards, a run's metrics), read through the file's
// footer one record batch at a time. apache-arrow's table reader (tableFromIPC) loops forever
// when a damaged footer points a record batch at a message of another kind, so it is not used.
import { readFileSync } from 'node:fs';

import { RecordBatchReader, Table } from 'apache-arrow';
import { ByteBuffer } from 'flatbuffers';

import { MambalabError } from '../errors.js';

// apache-arrow trusts the lengths of the flatbuffer vectors in a file's metadata (fields, field
// nodes, buffers, blocks): a damaged length sends its decoders through billions of entries that
// are not there (minutes, then out of memory). A vector must fit in the bytes after its start,
// so the flatbuffers library apache-arrow loads refuses a longer one where it reads the length,
// for every Arrow file read in this process. It is the one copy npm installs for both (kernel's
// package.json asks for apache-arrow's range), and one module in the GPU host's bundle too.
const vectorLength = ByteBuffer.prototype.__vector_len;
ByteBuffer.prototype.__vector_len = function (this: InstanceType<typeof ByteBuffer>, offset: number): number {
  const length = vectorLength.call(this, offset);
  const start = offset + this.readInt32(offset) + 4;
  if (length < 0 || length > this.capacity() - start) {
    throw new RangeError(`a flatbuffer vector of ${length} entries at byte ${start} runs past the ${this.capacity()} bytes of its metadata`);
  }
  return length;
};

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

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineChunker, parseLines, type LineChunk } from '../../../kernel/src/corpus/lines.js';
import { random } from '../data/helpers.js';

function chunkAll(stream: Buffer, cuts: number[], target: number): LineChunk[] {
  const chunker = new LineChunker('test.jsonl', target);
  const chunks: LineChunk[] = [];
  let at = 0;
  for (const cut of [...cuts, stream.length]) {
    chunks.push(...chunker.push(stream.subarray(at, cut)));
    at = cut;
  }
  return [...chunks, ...chunker.end()];
}

test('line chunker: any cutting of the stream gives back every byte, in whole lines, numbered', () => {
  const rand = random(11);
  for (let trial = 0; trial < 300; trial++) {
    const lines = Array.from({ length: Math.floor(rand() * 40) }, (_, i) => `{"text":"${'x'.repeat(Math.floor(rand() * 50))}${i}"}`);
    const text = lines.join('\n') + (rand() < 0.5 ? '\n' : '');
    const stream = Buffer.from(text);
    const cuts = Array.from({ length: Math.floor(rand() * 10) }, () => Math.floor(rand() * stream.length)).sort((a, b) => a - b);
    const target = 1 + Math.floor(rand() * 200);
    const chunks = chunkAll(stream, cuts, target);
    assert.equal(Buffer.concat(chunks.map((c) => c.bytes)).toString(), text);
    let expectedLine = 1;
    for (const [i, c] of chunks.entries()) {
      assert.equal(c.firstLine, expectedLine, `chunk ${i} of ${JSON.stringify(text)}`);
      if (i < chunks.length - 1) {
        assert.equal(c.bytes[c.bytes.length - 1], 0x0a, 'only the last chunk may end without a newline');
        // Full: at least the target, and no more than the target plus one line.
        assert.ok(c.bytes.length >= target, `chunk of ${c.bytes.length} bytes, target ${target}`);
        assert.ok(c.bytes.subarray(0, -1).lastIndexOf(0x0a) < target, 'it closed at the first newline past the target');
      }
      expectedLine += c.bytes.toString().split('\n').length - (c.bytes[c.bytes.length - 1] === 0x0a ? 1 : 0);
    }
    const lineCount = text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    assert.equal(expectedLine - 1, lineCount);
  }
});

test('parseLines: records, blank lines, and bad records named by line and reason', () => {
  const input = [
    '\ufeff{"text":"first","url":"u"}', // byte-order mark opening the file
    '',
    '{"text":"second\\nline","meta":{"redpajama_set_name":"RedPajamaC4"}}\r',
    '{"text":"broken',
    '[1,2]',
    '{"url":"no text"}',
    '{"text":42}',
    '   ',
    '{"text":"last, no newline"}',
  ].join('\n');
  const parsed = parseLines({ firstLine: 1, bytes: Buffer.from(input) });
  assert.deepEqual(
    parsed.records.map((r) => [r.line, r.text, r.set]),
    [
      [1, 'first', null],
      [3, 'second\nline', 'RedPajamaC4'],
      [9, 'last, no newline', null],
    ],
  );
  assert.equal(parsed.blank, 2);
  assert.deepEqual(
    parsed.bad.map((b) => b.line),
    [4, 5, 6, 7],
  );
  assert.match(parsed.bad[0]!.reason, /is not valid JSON/);
  assert.match(parsed.bad[1]!.reason, /not an object/);
  assert.match(parsed.bad[2]!.reason, /no "text" string field/);
});

test('parseLines: a line that is not UTF-8 is a bad record naming the byte; its neighbours parse', () => {
  const bytes = Buffer.concat([Buffer.from('{"text":"ok"}\n{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n{"text":"ok too"}\n')]);
  const parsed = parseLines({ firstLine: 10, bytes });
  assert.deepEqual(parsed.records.map((r) => [r.line, r.text]), [[10, 'ok'], [12, 'ok too']]);
  assert.equal(parsed.bad.length, 1);
  assert.equal(parsed.bad[0]!.line, 11);
  assert.match(parsed.bad[0]!.reason, /not valid UTF-8 \(byte 0xe9 at byte 13 of the line\)/);
});

test('parseLines fuzz: random bytes never throw, and every line is a record, a blank or a bad record', () => {
  const rand = random(12);
  const pieces = ['{"text":"', '"}', '\\u00e9', '\\', '"', ':', ',', '{', '}', '[', ']', 'text', ' ', '\n', '\r', 'é', '😀', 'null', '1'];
  for (let trial = 0; trial < 3000; trial++) {
    const parts: Buffer[] = [];
    for (let i = Math.floor(rand() * 30); i > 0; i--) {
      parts.push(rand() < 0.1 ? Buffer.from([Math.floor(rand() * 256)]) : Buffer.from(pieces[Math.floor(rand() * pieces.length)]!));
    }
    const bytes = Buffer.concat(parts);
    const parsed = parseLines({ firstLine: 1, bytes });
    const text = bytes.toString('latin1');
    const lines = text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    assert.equal(parsed.records.length + parsed.bad.length + parsed.blank, lines, JSON.stringify(text));
    const numbers = [...parsed.records, ...parsed.bad].map((r) => r.line);
    assert.equal(new Set(numbers).size, numbers.length, 'a line is counted once');
    for (const n of numbers) assert.ok(n >= 1 && n <= lines);
    for (const r of parsed.records) assert.equal(typeof r.text, 'string');
  }
});

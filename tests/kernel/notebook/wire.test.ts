import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';

import { decode, encode, request, sign } from '../../../kernel/src/notebook/wire.js';

const KEY = 'a0b1c2d3-secret';

test('sign is the hex HMAC-SHA256 of the frames in order, as the messaging spec defines it', () => {
  const frames = ['{"msg_id":"1"}', '{}', '{}', '{"code":"1+1"}'].map((s) => Buffer.from(s));
  const expected = createHmac('sha256', KEY).update(frames.map((f) => f.toString()).join('')).digest('hex');
  assert.equal(sign(KEY, frames), expected);
  assert.match(expected, /^[0-9a-f]{64}$/);
  assert.notEqual(sign('other key', frames), expected);
});

test('encode lays out delimiter, signature and the four JSON frames; decode reads them back', () => {
  const message = request('session-1', 'execute_request', { code: 'console.log("é")', silent: false });
  assert.equal(message.header.msg_type, 'execute_request');
  assert.equal(message.header.version, '5.3');
  assert.equal(message.header.session, 'session-1');
  const frames = encode(message, KEY);
  assert.equal(frames.length, 6);
  assert.equal(frames[0]!.toString(), '<IDS|MSG>');
  assert.equal(frames[1]!.toString(), sign(KEY, frames.slice(2)));
  assert.deepEqual(JSON.parse(frames[5]!.toString()), { code: 'console.log("é")', silent: false });
  // As iopub delivers it: a topic before the delimiter, buffers after the content.
  const decoded = decode([Buffer.from('kernel.1.stream'), ...frames, Buffer.from([1, 2, 3])], KEY);
  assert.deepEqual(decoded.header, message.header);
  assert.deepEqual(decoded.content, message.content);
  assert.deepEqual(decoded.parent_header, {});
  assert.deepEqual(decoded.buffers, [Buffer.from([1, 2, 3])]);
});

test('decode refuses a tampered message, another key, a missing delimiter and frames that are not JSON objects', () => {
  const frames = encode(request('s', 'kernel_info_request', {}), KEY);
  const tampered = [...frames];
  tampered[5] = Buffer.from('{"code":"rm -rf /"}');
  assert.throws(() => decode(tampered, KEY), /bad signature/);
  assert.throws(() => decode(frames, 'another key'), /bad signature/);
  assert.throws(() => decode(frames.slice(1), KEY), /no <IDS\|MSG> delimiter/);
  assert.throws(() => decode(frames.slice(0, 4), KEY), /expected a signature and 4 JSON frames after the delimiter, got 3 frames/);
  const notJson = [Buffer.from('nope'), Buffer.from('{}'), Buffer.from('{}'), Buffer.from('{}')];
  assert.throws(() => decode([frames[0]!, Buffer.from(sign(KEY, notJson)), ...notJson], KEY), /the header frame is not JSON/);
  const array = [Buffer.from('{"msg_id":"1","msg_type":"status"}'), Buffer.from('[]'), Buffer.from('{}'), Buffer.from('{}')];
  assert.throws(() => decode([frames[0]!, Buffer.from(sign(KEY, array)), ...array], KEY), /the parent header frame is not a JSON object/);
});

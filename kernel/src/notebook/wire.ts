// The Jupyter wire protocol (messaging spec 5.3): a message travels as ZeroMQ frames
//   [routing ids…, "<IDS|MSG>", signature, header, parent_header, metadata, content, buffers…]
// where the signature is the hex HMAC-SHA256 of the four JSON frames under the connection's key.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

import { MambalabError } from '../errors.js';

export const PROTOCOL_VERSION = '5.3';
const DELIMITER = Buffer.from('<IDS|MSG>');

export interface MessageHeader {
  msg_id: string;
  session: string;
  username: string;
  date: string;
  msg_type: string;
  version: string;
}

export interface JupyterMessage {
  header: MessageHeader;
  /** The header of the request this answers; empty for requests. */
  parent_header: Partial<MessageHeader>;
  metadata: Record<string, unknown>;
  content: Record<string, unknown>;
  buffers: Buffer[];
}

/** The hex HMAC-SHA256 of the header, parent header, metadata and content frames. */
export function sign(key: string, frames: readonly Buffer[]): string {
  const hmac = createHmac('sha256', key);
  for (const frame of frames) hmac.update(frame);
  return hmac.digest('hex');
}

/** A new request of this session. */
export function request(session: string, msgType: string, content: Record<string, unknown>): JupyterMessage {
  return {
    header: { msg_id: randomUUID(), session, username: 'mambalab', date: new Date().toISOString(), msg_type: msgType, version: PROTOCOL_VERSION },
    parent_header: {},
    metadata: {},
    content,
    buffers: [],
  };
}

/** The frames of a message, signed with `key` (a DEALER socket adds its own routing id). */
export function encode(message: JupyterMessage, key: string): Buffer[] {
  const frames = [message.header, message.parent_header, message.metadata, message.content].map((part) => Buffer.from(JSON.stringify(part)));
  return [DELIMITER, Buffer.from(sign(key, frames)), ...frames, ...message.buffers];
}

function parsePart(frame: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(frame.toString('utf8'));
  } catch (e) {
    throw new MambalabError(`Jupyter message: the ${what} frame is not JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MambalabError(`Jupyter message: the ${what} frame is not a JSON object`);
  return value as Record<string, unknown>;
}

/** The message in `frames`, its signature checked against `key`. */
export function decode(frames: readonly Buffer[], key: string): JupyterMessage {
  const at = frames.findIndex((f) => f.equals(DELIMITER));
  if (at < 0) throw new MambalabError('Jupyter message: no <IDS|MSG> delimiter among its frames');
  if (frames.length < at + 6) throw new MambalabError(`Jupyter message: expected a signature and 4 JSON frames after the delimiter, got ${frames.length - at - 1} frames`);
  const signature = frames[at + 1]!;
  const parts = frames.slice(at + 2, at + 6);
  const expected = Buffer.from(sign(key, parts));
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    throw new MambalabError('Jupyter message: bad signature (not signed with this connection\'s key)');
  }
  const header = parsePart(parts[0]!, 'header');
  if (typeof header.msg_type !== 'string' || typeof header.msg_id !== 'string') throw new MambalabError('Jupyter message: the header lacks msg_type or msg_id');
  return {
    header: header as unknown as MessageHeader,
    parent_header: parsePart(parts[1]!, 'parent header') as Partial<MessageHeader>,
    metadata: parsePart(parts[2]!, 'metadata'),
    content: parsePart(parts[3]!, 'content'),
    buffers: frames.slice(at + 6),
  };
}

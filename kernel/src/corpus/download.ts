// Resumable, verified downloads. A file grows as <name>.part; a dropped connection resumes
// with an HTTP Range request from where the .part ends (in this run or the next one); the
// finished bytes must match the checksum from the Hub's listing before the .part is renamed.
// A verified file gets a <name>.sha256 beside it, so later runs skip it without re-reading it.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { MambalabError } from '../errors.js';
import { hubFetch, hubHeaders } from './hub.js';

export interface DownloadTask {
  url: string;
  dest: string;
  size: number;
  /** sha256 (LFS files) or, with `gitBlob`, the git blob sha1 the listing gives. */
  checksum: string;
  gitBlob?: boolean;
}

export interface DownloadOptions {
  /** Attempts after a dropped connection or a 5xx (default 5). */
  retries?: number;
  /** First wait between attempts, doubled each time (default 1000 ms). */
  retryDelayMs?: number;
  /** New bytes on disk (negative when a restart throws a .part away). */
  onBytes?: (n: number) => void;
}

export type DownloadOutcome = 'downloaded' | 'present';

function newHash(task: DownloadTask): Hash {
  const hash = createHash(task.gitBlob ? 'sha1' : 'sha256');
  if (task.gitBlob) hash.update(`blob ${task.size}\0`);
  return hash;
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

/** Downloads task.url to task.dest unless a verified copy is there; resumes and verifies. */
export async function downloadFile(task: DownloadTask, options: DownloadOptions = {}): Promise<DownloadOutcome> {
  const sidecar = `${task.dest}.sha256`;
  if (existsSync(task.dest) && statSync(task.dest).size === task.size) {
    if (existsSync(sidecar) && readFileSync(sidecar, 'utf8').trim() === task.checksum) return 'present';
    // A file copied in by hand: verify it once.
    const hash = newHash(task);
    await hashFile(task.dest, hash);
    if (hash.digest('hex') === task.checksum) {
      writeFileSync(sidecar, task.checksum + '\n');
      return 'present';
    }
  }
  mkdirSync(dirname(task.dest), { recursive: true });
  const part = `${task.dest}.part`;
  const progress = await resumePart(task, part);
  const retries = options.retries ?? 5;
  for (let attempt = 0; progress.have < task.size; attempt++) {
    try {
      await fetchInto(task, part, progress, options.onBytes);
      if (progress.have < task.size) throw new Error(`the server closed the connection after ${progress.have} of ${task.size} bytes`);
    } catch (e) {
      if (e instanceof MambalabError || attempt >= retries) {
        throw e instanceof MambalabError ? e : new MambalabError(`${task.url}: ${(e as Error).message} (gave up after ${attempt + 1} attempts; run again to resume)`);
      }
      await sleep((options.retryDelayMs ?? 1000) * 2 ** attempt);
      Object.assign(progress, await resumePart(task, part)); // what reached the disk is what counts
    }
  }
  const digest = progress.hash.digest('hex');
  if (digest !== task.checksum) {
    rmSync(part, { force: true });
    throw new MambalabError(
      `${task.dest}: checksum mismatch: the listing says ${task.gitBlob ? 'git blob' : 'sha256'} ${task.checksum}, the download has ${digest}. ` +
        `The file was deleted; run the command again to download it afresh`,
    );
  }
  renameSync(part, task.dest);
  writeFileSync(sidecar, task.checksum + '\n');
  return 'downloaded';
}

interface PartProgress {
  /** Bytes in the .part file, all of them in `hash`. */
  have: number;
  hash: Hash;
}

/** Picks up a .part left by an earlier attempt or run (hashing what it holds). */
async function resumePart(task: DownloadTask, part: string): Promise<PartProgress> {
  const hash = newHash(task);
  const have = existsSync(part) ? statSync(part).size : 0;
  if (have > task.size) {
    rmSync(part);
    return { have: 0, hash };
  }
  if (have > 0) await hashFile(part, hash);
  return { have, hash };
}

/** One request: appends what arrives to the .part and the hash; a broken stream throws after saving what came. */
async function fetchInto(task: DownloadTask, part: string, progress: PartProgress, onBytes?: (n: number) => void): Promise<void> {
  const headers = { ...hubHeaders(), ...(progress.have > 0 ? { range: `bytes=${progress.have}-` } : {}) };
  const response = await hubFetch(task.url, { headers, redirect: 'follow' });
  if (response.status === 404) throw new MambalabError(`${task.url}: not found (HTTP 404)`);
  if (response.status === 401 || response.status === 403) {
    throw new MambalabError(`${task.url}: HTTP ${response.status}: access refused (gated repository? set HF_TOKEN)`);
  }
  if (response.status >= 500 || response.status === 429) throw new Error(`HTTP ${response.status}`);
  if (response.status === 416 || (progress.have > 0 && response.status === 200)) {
    // The range was refused or ignored: start the file over.
    onBytes?.(-progress.have);
    rmSync(part, { force: true });
    Object.assign(progress, { have: 0, hash: newHash(task) });
    if (response.status === 416) throw new Error('HTTP 416 for the rest of a partial download');
  } else if (response.status !== 200 && response.status !== 206) {
    throw new MambalabError(`${task.url}: unexpected HTTP ${response.status}`);
  }
  if (!response.body) throw new Error('empty response');
  const file = await open(part, 'a');
  try {
    for await (const chunk of response.body) {
      const bytes = chunk as Uint8Array;
      if (progress.have + bytes.length > task.size) {
        throw new MambalabError(`${task.url}: the server sent more than the ${task.size} bytes the listing gives`);
      }
      await file.write(bytes);
      progress.hash.update(bytes);
      progress.have += bytes.length;
      onBytes?.(bytes.length);
    }
  } finally {
    await file.close();
  }
}

// Worker threads that tokenize chunks of JSON lines in parallel; each takes the next queued
// chunk when it finishes one, and results come back as promises.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import type { LineChunk } from './lines.js';
import type { TokenizedChunk } from './tokenize-chunk.js';

const SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(SOURCE ? './prepare-worker.ts' : './prepare-worker.js', import.meta.url);

/**
 * Built, the worker is a .js file. Run from source under tsx (the tests), it is .ts, and Node 20
 * does not apply tsx's loader to a worker's entry file, so a one-line entry registers it first.
 */
function startWorker(workerData: unknown): Worker {
  if (!SOURCE) return new Worker(WORKER_URL, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
  return new Worker(entry, { eval: true, workerData });
}

interface Job {
  chunk: LineChunk;
  resolve: (r: TokenizedChunk) => void;
  reject: (e: Error) => void;
}

export interface PoolOptions {
  tokenizer: string;
  tokenizerFile?: string;
  /** Keep only documents of these SlimPajama sets. */
  sets?: string[] | null;
  /** Threads (default: one per core). */
  workers?: number;
}

export class TokenizerPool {
  private readonly idle: Worker[] = [];
  private readonly running = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private failure?: Error;

  constructor(options: PoolOptions) {
    const size = Math.max(1, options.workers ?? availableParallelism());
    const workerData = { tokenizer: options.tokenizer, tokenizerFile: options.tokenizerFile, sets: options.sets ?? null };
    for (let i = 0; i < size; i++) {
      const worker = startWorker(workerData);
      worker.on('message', (result: TokenizedChunk) => this.finished(worker, result));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => code !== 0 && this.fail(new Error(`tokenizer worker exited with code ${code}`)));
      this.idle.push(worker);
    }
  }

  get size(): number {
    return this.idle.length + this.running.size;
  }

  /** Tokenizes a chunk on the next free thread (the chunk's bytes move to it). */
  run(chunk: LineChunk): Promise<TokenizedChunk> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.queue.push({ chunk, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    const workers = [...this.idle, ...this.running.keys()];
    this.idle.length = 0;
    this.running.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.running.set(worker, job);
      // Copy into a fresh ArrayBuffer that can be transferred (the chunk may share Node's pool).
      const bytes = new Uint8Array(job.chunk.bytes);
      worker.postMessage({ firstLine: job.chunk.firstLine, bytes }, [bytes.buffer]);
    }
  }

  private finished(worker: Worker, result: TokenizedChunk): void {
    this.running.get(worker)?.resolve(result);
    this.running.delete(worker);
    this.idle.push(worker);
    this.dispatch();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const job of [...this.running.values(), ...this.queue]) job.reject(this.failure);
    this.running.clear();
    this.queue.length = 0;
  }
}

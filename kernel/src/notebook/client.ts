// A Jupyter client in Node: writes a connection file, starts the kernel process on it (as a
// kernel spec's argv would), and talks to it over ZeroMQ. Requests go out on shell (execute,
// kernel_info) and control (shutdown); outputs come back on iopub, matched to their request
// by the parent header. No stdin channel: every request says allow_stdin: false, so the
// kernel never asks for input. No heartbeat either: the kernel is our child process, and its
// exit is the surer sign of death.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Dealer, Subscriber, Socket } from 'zeromq';

import { MambalabError } from '../errors.js';
import { decode, encode, request, type JupyterMessage } from './wire.js';

const IP = '127.0.0.1';
const CHANNELS = ['shell', 'iopub', 'stdin', 'control', 'hb'] as const;
/** The kernel's stdout and stderr kept to explain a kernel that died. */
const KEPT_OUTPUT_CHARS = 4000;

export interface KernelStartOptions {
  /** The kernel's argv without the connection file, e.g. [node, main.js, 'kernel', 'start']. */
  command: string[];
  cwd: string;
  /** How long the kernel may take to answer its first kernel_info_request (default 120 s). */
  startTimeoutS?: number;
}

export class KernelDied extends MambalabError {}
export class ExecutionTimeout extends MambalabError {}

/** Ports nobody listens on now (the kernel binds them right after). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject).listen(0, IP, () => resolve(server));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

type Handler = (message: JupyterMessage) => void;

export class KernelClient {
  private readonly session = randomUUID();
  private readonly shell: Dealer;
  private readonly control: Dealer;
  private readonly iopub: Subscriber;
  /** Per request id: what to do with its replies (shell, control) and its outputs (iopub). */
  private readonly replies = new Map<string, Handler>();
  private readonly outputs = new Map<string, Handler>();
  private kernelOutput = '';
  private exitReason: string | undefined;
  private readonly exited: Promise<void>;
  private onExit: ((reason: string) => void)[] = [];

  private constructor(
    private readonly child: ChildProcess,
    private readonly key: string,
    ports: Record<(typeof CHANNELS)[number], number>,
    private readonly connectionDir: string,
  ) {
    const keep = (chunk: Buffer) => (this.kernelOutput = (this.kernelOutput + chunk.toString('utf8')).slice(-KEPT_OUTPUT_CHARS));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // The kernel runs in its own process group (a Ctrl-C meant for the runner must not
    // interrupt a cell), so it goes down with the runner however the runner ends.
    const killKernel = () => this.kill();
    process.once('exit', killKernel);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        process.off('exit', killKernel);
        this.exitReason = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        for (const notify of this.onExit) notify(this.exitReason);
        resolve();
      });
    });
    // Required here, not imported at the top: zeromq loads its native addon as it is evaluated,
    // and the CLI bundle on the GPU host (tests/gpu/pack.sh) runs other commands without it.
    const { Dealer, Subscriber } = createRequire(import.meta.url)('zeromq') as typeof import('zeromq');
    // linger 0: closing a socket drops what the kernel will never read.
    this.shell = new Dealer({ routingId: this.session, linger: 0 });
    this.control = new Dealer({ routingId: `${this.session}-control`, linger: 0 });
    this.iopub = new Subscriber({ linger: 0 });
    this.shell.connect(`tcp://${IP}:${ports.shell}`);
    this.control.connect(`tcp://${IP}:${ports.control}`);
    this.iopub.connect(`tcp://${IP}:${ports.iopub}`);
    this.iopub.subscribe();
    for (const [socket, handlers] of [[this.shell, this.replies], [this.control, this.replies], [this.iopub, this.outputs]] as const) {
      void this.dispatch(socket, handlers);
    }
  }

  /** Starts the kernel and resolves once it answers on shell and publishes on iopub. */
  static async start(options: KernelStartOptions): Promise<KernelClient> {
    const ports = await freePorts(CHANNELS.length);
    const named = Object.fromEntries(CHANNELS.map((c, i) => [c, ports[i]!])) as Record<(typeof CHANNELS)[number], number>;
    const key = randomBytes(32).toString('hex');
    const connectionDir = mkdtempSync(join(tmpdir(), 'mambalab-kernel-'));
    const connectionFile = join(connectionDir, 'connection.json');
    writeFileSync(
      connectionFile,
      JSON.stringify({ ...Object.fromEntries(CHANNELS.map((c) => [`${c}_port`, named[c]])), ip: IP, transport: 'tcp', key, signature_scheme: 'hmac-sha256', kernel_name: 'mambalab' }),
      { mode: 0o600 },
    );
    const [program, ...args] = options.command;
    if (!program) throw new MambalabError('notebook: no kernel command');
    const child = spawn(program, [...args, connectionFile], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const client = new KernelClient(child, key, named, connectionDir);
    try {
      await client.waitUntilReady((options.startTimeoutS ?? 120) * 1000);
    } catch (error) {
      client.kill();
      await client.exited;
      client.close();
      throw error;
    }
    return client;
  }

  /**
   * Runs `code`; every iopub message of the request goes to onOutput. Resolves with the
   * execute_reply's content once the kernel is idle again (all outputs delivered).
   */
  async execute(code: string, onOutput: Handler, timeoutMs = 0): Promise<Record<string, unknown>> {
    const message = request(this.session, 'execute_request', { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true });
    let reply: Record<string, unknown> | undefined;
    let idle = false;
    return this.track(message, timeoutMs, `the cell ran longer than its timeout (${timeoutMs / 1000} s); the kernel was killed`, (done) => {
      this.replies.set(message.header.msg_id, (m) => {
        reply = m.content;
        if (idle) done(reply);
      });
      this.outputs.set(message.header.msg_id, (m) => {
        if (m.header.msg_type === 'status') {
          idle = m.content.execution_state === 'idle';
          if (idle && reply) done(reply);
          return;
        }
        onOutput(m);
      });
      return this.send(this.shell, message);
    });
  }

  /** Asks the kernel to shut down; kills it if it has not exited within `graceMs`. */
  async shutdown(graceMs = 5000): Promise<void> {
    if (this.exitReason === undefined) {
      await this.send(this.control, request(this.session, 'shutdown_request', { restart: false }));
      const timer = setTimeout(() => this.kill(), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.close();
  }

  /** Kills the kernel process (SIGKILL): for a cell past its timeout or a runner stopped. */
  kill(): void {
    if (this.exitReason === undefined) this.child.kill('SIGKILL');
  }

  /** Resolves when the kernel process has exited (after kill or shutdown). */
  async closed(): Promise<void> {
    await this.exited;
    this.close();
  }

  private close(): void {
    for (const socket of [this.shell, this.control, this.iopub]) if (!socket.closed) socket.close();
    rmSync(this.connectionDir, { recursive: true, force: true });
  }

  private async waitUntilReady(timeoutMs: number): Promise<void> {
    // A subscriber misses what was published before it connected, so the kernel counts as
    // ready only once an answer to kernel_info has come back on iopub as well as on shell.
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const message = request(this.session, 'kernel_info_request', {});
      let replied = false;
      let published = false;
      const ready = await this.track(message, 1000, '', (done) => {
        const check = () => replied && published && done(true);
        this.replies.set(message.header.msg_id, () => ((replied = true), check()));
        this.outputs.set(message.header.msg_id, () => ((published = true), check()));
        return this.send(this.shell, message);
      }).catch((error: unknown) => {
        if (error instanceof ExecutionTimeout) return false;
        throw error;
      });
      if (ready) return;
    }
    throw new KernelDied(`notebook: the kernel did not answer within ${timeoutMs / 1000} s${this.outputNote()}`);
  }

  /**
   * Sends a request and settles when `start`'s `done` is called, when the kernel dies
   * (KernelDied) or after timeoutMs (ExecutionTimeout; 0 = never); its handlers go either way.
   */
  private track<T>(message: JupyterMessage, timeoutMs: number, timeoutText: string, start: (done: (value: T) => void) => Promise<void>): Promise<T> {
    const id = message.header.msg_id;
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = () => {
        clearTimeout(timer);
        this.replies.delete(id);
        this.outputs.delete(id);
        this.onExit = this.onExit.filter((f) => f !== died);
      };
      const died = (reason: string) => {
        settle();
        reject(new KernelDied(`notebook: the kernel ${reason}${this.outputNote()}`));
      };
      if (this.exitReason !== undefined) return died(this.exitReason);
      this.onExit.push(died);
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          settle();
          reject(new ExecutionTimeout(`notebook: ${timeoutText}`));
        }, timeoutMs);
      }
      start((value) => {
        settle();
        resolve(value);
      }).catch((error: unknown) => {
        settle();
        reject(error);
      });
    });
  }

  private outputNote(): string {
    const text = this.kernelOutput.trim();
    return text ? `; its last output:\n${text}` : '';
  }

  private async send(socket: Dealer, message: JupyterMessage): Promise<void> {
    await socket.send(encode(message, this.key));
  }

  /** Hands every message of `socket` to the handler of its parent request, until the socket closes. */
  private async dispatch(socket: Socket & AsyncIterable<Buffer[]>, handlers: Map<string, Handler>): Promise<void> {
    try {
      for await (const frames of socket) {
        const message = decode(frames, this.key);
        const parent = message.parent_header.msg_id;
        if (parent !== undefined) handlers.get(parent)?.(message);
      }
    } catch (error) {
      if (!socket.closed) throw error;
    }
  }
}

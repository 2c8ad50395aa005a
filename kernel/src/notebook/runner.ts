// Runs a notebook headlessly: every code cell in order on a fresh kernel, its outputs (streams,
// displays and their in-place updates, results, errors) collected into the cell as Jupyter
// would store them. Stops at the first cell that fails, and kills a cell that outlives its
// timeout together with its kernel.
import { KernelClient, KernelDied, ExecutionTimeout } from './client.js';
import { joinLines, type Cell, type Notebook, type Output } from './ipynb.js';
import { injectParameters, type Parameters } from './params.js';
import type { JupyterMessage } from './wire.js';

export interface RunNotebookOptions {
  /** The kernel's argv without the connection file ([node, main.js, 'kernel', 'start']). */
  kernelCommand: string[];
  /** The kernel's working directory (the notebook's, as Jupyter has it). */
  cwd: string;
  parameters?: Parameters;
  /** Seconds a cell may run before the kernel is killed (0 or undefined: no limit). */
  timeoutS?: number;
  /** One line per cell run (and what went wrong). */
  log?: (line: string) => void;
}

export interface CellFailure {
  /** The cell's position in the notebook, from 1. */
  cell: number;
  ename: string;
  evalue: string;
  traceback: string[];
}

export interface RunResult {
  /** The notebook with this run's outputs (and the injected parameters). */
  notebook: Notebook;
  /** The cell that failed, timed out or lost its kernel; the cells after it did not run. */
  failure?: CellFailure;
}

/** The fields of the iopub messages kept (each message type has its own few; spec 5.3). */
interface IopubContent {
  execution_count: number | null;
  wait?: boolean;
  name: 'stdout' | 'stderr';
  text: string;
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  ename: string;
  evalue: string;
  traceback?: string[];
}

/** The outputs of one cell as iopub delivers them; displays are kept by id for later updates. */
class CellOutputs {
  readonly outputs: Output[] = [];
  executionCount: number | null = null;
  private clearOnNext = false;

  constructor(private readonly displays: Map<string, Output[]>) {}

  add(message: JupyterMessage): void {
    const { msg_type: type } = message.header;
    const content = message.content as unknown as IopubContent;
    if (type === 'execute_input') {
      this.executionCount = content.execution_count;
      return;
    }
    if (type === 'clear_output') {
      if (content.wait) this.clearOnNext = true;
      else this.outputs.length = 0;
      return;
    }
    if (type === 'update_display_data') {
      // Every output with this display id, in whichever cell, shows the new data.
      for (const shown of this.displays.get(displayId(message) ?? '') ?? []) Object.assign(shown, { data: content.data, metadata: content.metadata ?? {} });
      return;
    }
    const output = outputOf(type, content);
    if (!output) return;
    if (this.clearOnNext) {
      this.outputs.length = 0;
      this.clearOnNext = false;
    }
    const last = this.outputs.at(-1);
    if (output.output_type === 'stream' && last?.output_type === 'stream' && last.name === output.name) {
      last.text = joinLines(last.text) + joinLines(output.text);
      return;
    }
    this.outputs.push(output);
    const id = displayId(message);
    if (id !== undefined && output.output_type === 'display_data') this.displays.set(id, [...(this.displays.get(id) ?? []), output]);
  }
}

function displayId(message: JupyterMessage): string | undefined {
  const transient = message.content.transient as { display_id?: unknown } | undefined;
  return typeof transient?.display_id === 'string' ? transient.display_id : undefined;
}

function outputOf(type: string, content: IopubContent): Output | undefined {
  switch (type) {
    case 'stream':
      return { output_type: 'stream', name: content.name, text: content.text };
    case 'display_data':
      return { output_type: 'display_data', data: content.data, metadata: content.metadata ?? {} };
    case 'execute_result':
      return { output_type: 'execute_result', execution_count: content.execution_count, data: content.data, metadata: content.metadata ?? {} };
    case 'error':
      return { output_type: 'error', ename: content.ename, evalue: content.evalue, traceback: content.traceback ?? [] };
    default:
      return undefined;
  }
}

/**
 * What failed, from the execute_reply, or where the kernel leaves it out (tslab prints the
 * error to the cell's stderr and replies only "error"), from that stderr: the first line
 * such as "MambalabError: …", else its first line (a type error: "1:7 - Type …").
 */
function failureOf(cell: number, reply: Record<string, unknown>, outputs: readonly Output[]): CellFailure {
  if (typeof reply.ename === 'string' && reply.ename !== '') {
    return { cell, ename: reply.ename, evalue: String(reply.evalue ?? ''), traceback: Array.isArray(reply.traceback) ? reply.traceback.map(String) : [] };
  }
  const stderr = outputs.flatMap((o) => (o.output_type === 'stream' && o.name === 'stderr' ? [joinLines(o.text)] : [])).join('');
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  for (const line of lines) {
    const thrown = /^([A-Za-z_$][\w$]*(?:Error|Exception|Interrupted|Diverged)): (.*)$/.exec(line);
    if (thrown) return { cell, ename: thrown[1]!, evalue: thrown[2]!, traceback: lines };
  }
  return { cell, ename: 'Error', evalue: lines[0] ?? 'the kernel reported an error without a message', traceback: lines.slice(1) };
}

function firstLine(cell: Cell): string {
  const line = joinLines(cell.source).trim().split('\n')[0] ?? '';
  return line.length > 72 ? `${line.slice(0, 71)}…` : line;
}

/** Runs every code cell of `input` on a new kernel; the input itself is left as it was. */
export async function runNotebook(input: Notebook, options: RunNotebookOptions): Promise<RunResult> {
  const log = options.log ?? (() => {});
  const notebook = structuredClone(injectParameters(input, options.parameters ?? {}));
  // Outputs of an earlier run would mix with this run's: every code cell starts empty.
  for (const cell of notebook.cells) {
    if (cell.cell_type !== 'code') continue;
    cell.outputs = [];
    cell.execution_count = null;
  }
  const code = notebook.cells.map((cell, i) => ({ cell, index: i + 1 })).filter(({ cell }) => cell.cell_type === 'code' && joinLines(cell.source).trim() !== '');
  const displays = new Map<string, Output[]>();
  const kernel = await KernelClient.start({ command: options.kernelCommand, cwd: options.cwd });
  let failure: CellFailure | undefined;
  let killed = false;
  // Ctrl-C or a kill of the runner stops the kernel: the cell fails, and what ran is kept.
  const stop = () => {
    killed = true;
    kernel.kill();
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    for (const [k, { cell, index }] of code.entries()) {
      const collected = new CellOutputs(displays);
      cell.outputs = collected.outputs;
      const started = performance.now();
      let reply: Record<string, unknown>;
      try {
        reply = await kernel.execute(joinLines(cell.source), (m) => collected.add(m), (options.timeoutS ?? 0) * 1000);
      } catch (error) {
        if (!(error instanceof KernelDied || error instanceof ExecutionTimeout)) throw error;
        kernel.kill();
        killed = true;
        failure = { cell: index, ename: error.constructor.name, evalue: error.message.replace(/^notebook: /, ''), traceback: [] };
        break;
      } finally {
        cell.execution_count = collected.executionCount;
      }
      const seconds = (performance.now() - started) / 1000;
      log(`cell ${index}/${notebook.cells.length} (${k + 1} of ${code.length} code cells) ${seconds.toFixed(1)} s: ${firstLine(cell)}`);
      if (typeof reply.execution_count === 'number') cell.execution_count = reply.execution_count;
      if (reply.status !== 'ok') {
        failure = failureOf(index, reply, collected.outputs);
        break;
      }
    }
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
    if (killed) await kernel.closed();
    else await kernel.shutdown();
  }
  return { notebook, ...(failure ? { failure } : {}) };
}

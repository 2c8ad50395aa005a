// End to end with our own kernel: a real JupyterLab 4.6.4 in headless Chromium, a new notebook
// started from the launcher with "Mamba Lab (TypeScript)", code pasted into cells and run with
// Shift+Enter. The tiny models train on the real C4 sample in the kernel, and the extension
// draws what the kernel sends: the loss curve growing while a cell trains, an experiment's
// training-step savings, and a MoE model's expert routing. Screenshots go to
// test-artifacts/browser/kernel-*.png.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium as playwright, type Browser, type Locator, type Page } from 'playwright-core';
import { C4_SAMPLE } from '../helpers.js';
import { ensureJupyter } from '../support/jupyter.js';
import { CHROMIUM_FLAGS, ensureChromium } from './support/chromium.js';
import { ensureJupyterLab, startJupyterLab, type LabServer } from './support/jupyterlab.js';
import { cellText, chartState, enterCode, showCell, waitForCellDone } from './support/lab-page.js';

const repo = join(import.meta.dirname, '..', '..');
const artifacts = join(repo, 'test-artifacts', 'browser');
const KERNEL = 'Mamba Lab (TypeScript)';

// The notebook's cells, in order. Each later cell uses what the earlier ones declared.
const SETUP = `import { createModel, experiment, loadTextCorpus, preset, show, Trainer, trainRun } from 'mambalab';
const data = loadTextCorpus(${JSON.stringify(C4_SAMPLE)});
JSON.stringify({ documents: data.stats('train').documents, pid: process.pid })`;
// 40 steps of 4 × 64 tokens: several seconds here, long enough to see redraws on a fast machine too.
const TRAIN = `const { config, training } = preset('mamba', 'tiny');
const trainer = new Trainer(createModel(config), { ...training, batchSize: 4, seqLen: 64, warmupSteps: 4 });
const run = await trainRun(trainer, data, { steps: 40, dir: 'runs/mamba-tiny', evalEvery: 10 });`;
// The trainer's default learning rate: at this size MoE-Mamba reaches Mamba's final smoothed loss
// before step 30 (about 1.2× fewer steps), so the savings plot has its mark and its ratio.
const EXPERIMENT = `const result = await experiment(
  [{ name: 'mamba', model: preset('mamba', 'tiny').config }, { name: 'moe-mamba', model: preset('moe-mamba', 'tiny').config }],
  data,
  { steps: 30, dir: 'runs/moe-vs-mamba', trainer: { batchSize: 2, seqLen: 32, warmupSteps: 4 }, smoothing: 0.1 },
);
show(result);`;
// Two MoE layers (1 and 3), so that there is more than one row and one bar chart.
const MOE = `const black = preset('blackmamba', 'tiny');
const moeTrainer = new Trainer(createModel({ ...black.config, pattern: 'ME*2' }), { ...black.training, batchSize: 2, seqLen: 32, warmupSteps: 4 });
const fitted = await moeTrainer.fit(data, { steps: 20, name: 'blackmamba-tiny' });`;

/** One look at the live loss plot of a cell, taken in the page while the cell runs. */
interface Sample {
  running: boolean;
  /** points of the training-loss trace */
  points: number;
  progress: string;
  /** the same chart element as at the first sample (updated in place, not replaced) */
  sameNode: boolean;
}

const chromium = ensureChromium();
if ('skip' in chromium) console.warn(`\n[browser tests] SKIPPED: ${chromium.skip}\n`);

describe(`the ${KERNEL} kernel in a real JupyterLab`, { skip: 'skip' in chromium ? chromium.skip : false }, () => {
  let server: LabServer;
  let browser: Browser;
  let page: Page;
  let kernelPid: number | undefined;
  const pageErrors: string[] = [];

  before(async () => {
    ensureJupyter(); // .venv and our kernel spec in it, as npm install leaves them
    ensureJupyterLab();
    mkdirSync(artifacts, { recursive: true });
    server = await startJupyterLab();
    browser = await playwright.launch({ executablePath: (chromium as { path: string }).path, args: CHROMIUM_FLAGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (error) => {
      if (!isDebuggerWithoutSession(error)) pageErrors.push(`${error.message}\n${error.stack}`);
    });
    page.on('console', (message) => {
      if (message.type() === 'error' && /mambalab/i.test(message.text())) pageErrors.push(message.text());
    });
  });

  after(async () => {
    await browser?.close();
    await server?.stop(); // shuts the kernel down with the server
    if (kernelPid !== undefined) {
      // The server ends its kernels on shutdown; make sure, by the pid the kernel reported.
      const alive = (): boolean => {
        try {
          process.kill(kernelPid!, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 50 && alive(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      if (alive()) {
        console.warn(`[browser tests] the kernel (pid ${kernelPid}) outlived the server: killing it`);
        process.kill(kernelPid, 'SIGKILL');
      }
    }
  });

  test('the launcher offers the kernel, and a new notebook with it loads mambalab and the C4 sample', async () => {
    await page.goto(`${server.url}/lab?reset`);
    const card = page.locator('.jp-LauncherCard[data-category="Notebook"]', { hasText: KERNEL });
    await card.waitFor({ timeout: 60_000 });
    await card.click();
    await page.locator('.jp-NotebookPanel').waitFor({ timeout: 60_000 });
    const kernel = await page.evaluate(async () => {
      const panel = (window as unknown as { jupyterapp: any }).jupyterapp.shell.currentWidget;
      await panel.sessionContext.ready;
      return { name: panel.sessionContext.kernelDisplayName as string, language: (await panel.sessionContext.session.kernel.info).language_info.name as string };
    });
    assert.deepEqual(kernel, { name: KERNEL, language: 'typescript' });

    const { stdout } = await runCode(page, 0, SETUP);
    const printed = JSON.parse(stdout.trim()) as { documents: number; pid: number };
    kernelPid = printed.pid;
    assert.equal(printed.documents, 950, 'the C4 sample: 950 training documents');
  });

  test('a training cell draws its loss curve live, growing while the cell runs, in one output', async () => {
    await startSampling(page, 1, 'mamba-tiny');
    const { cell } = await runCode(page, 1, TRAIN, async () => {
      // a screenshot mid-training, the progress line and a partial curve (on a machine that
      // trains 40 steps too fast for that, of whatever is there when the cell ends)
      await page.waitForFunction(() => {
        const samples = (window as unknown as { mambalabSamples: Sample[] }).mambalabSamples;
        return samples.some((s) => s.running && s.points >= 8) || samples.at(-1)?.running === false;
      }, undefined, { timeout: 90_000 });
      await (await showCell(page, 1)).locator('.jp-OutputArea').screenshot({ path: join(artifacts, 'kernel-loss-live.png') });
    });
    const samples = await stopSampling(page);

    const whileRunning = samples.filter((s) => s.running && s.points > 0);
    const counts = [...new Set(whileRunning.map((s) => s.points))];
    assert.ok(counts.length >= 2, `the curve grew while the cell ran: point counts seen while running ${JSON.stringify(counts)}`);
    assert.deepEqual(counts, [...counts].sort((a, b) => a - b), 'the point count only grows');
    assert.ok(counts.filter((n) => n < 40).length >= 2, `at least two redraws before the last step (${counts.join(', ')})`);
    assert.ok(whileRunning.some((s) => /^mamba-tiny: step \d+ \/ 40 \(\d+%\) · loss \d/.test(s.progress)), `a progress line while training: ${whileRunning.map((s) => s.progress).join(' | ')}`);
    assert.ok(samples.every((s) => s.sameNode), 'the chart was updated in place, never replaced');

    // the final state: one output, the whole run and its validation points, no progress line
    assert.equal(await cell.locator('.jp-OutputArea-output.mambalab-output').count(), 1, 'one output for the whole fit');
    const chart = cell.locator('.mambalab-loss-plot');
    const final = await chartState(chart);
    assert.deepEqual(final.traces.map((t) => [t.name, t.points, t.lastX]), [['mamba-tiny', 40, 40], ['mamba-tiny (validation)', 4, 40]]);
    assert.equal(await chart.locator('.scatterlayer .trace').count(), 2, 'both traces drawn as SVG');
    assert.equal(await cell.locator('.mambalab-progress').count(), 0, 'the progress line is gone when training ends');
    await cell.locator('.jp-OutputArea').screenshot({ path: join(artifacts, 'kernel-loss-final.png') });
  });

  test('an experiment of tiny Mamba and MoE-Mamba shows its training-step savings', async () => {
    const { cell } = await runCode(page, 2, EXPERIMENT);
    // the live output of the two fits, then show(result)
    const outputs = cell.locator('.jp-OutputArea-output.mambalab-output');
    assert.equal(await outputs.count(), 2);
    const live = await chartState(outputs.nth(0).locator('.mambalab-loss-plot'));
    assert.deepEqual(live.traces.filter((t) => !t.name.endsWith('(validation)')).map((t) => [t.name, t.points]), [['mamba', 30], ['moe-mamba', 30]]);

    const shown = outputs.nth(1);
    assert.deepEqual(await viewKinds(shown), ['loss', 'savings', 'experts']);
    const savingsView = shown.locator('.mambalab-view-savings');
    const plot = savingsView.locator('.mambalab-savings-plot');
    await plot.locator('.main-svg').first().waitFor();
    const savings = await chartState(plot);
    assert.deepEqual(savings.traces.map((t) => t.name), ['mamba', 'moe-mamba', 'marks', 'savings']);
    assert.deepEqual(savings.traces.slice(0, 2).map((t) => [t.points, t.lastX]), [[30, 30], [30, 30]], 'both smoothed curves, whole runs');
    assert.equal(savings.traces[2]!.points, 2, "marks: where the baseline ends and where the candidate reaches the baseline's final loss");
    assert.ok(savings.traces[3]!.points > 0, 'the savings curve over loss levels has points');
    assert.equal(await plot.locator('.scatterlayer .trace').count(), 4);

    // the baseline's final loss: a dashed line across the loss panel, labelled with its value
    const label = savings.annotations.find((a) => a.startsWith('mamba final loss '));
    assert.ok(label, `a label for the baseline's final loss among ${JSON.stringify(savings.annotations)}`);
    const level = Number(label.slice('mamba final loss '.length));
    const line = savings.shapes.find((s) => s.xref === 'x domain' && s.yref === 'y');
    assert.ok(line && line.y0 === line.y1 && Math.abs(line.y0 - level) < 1e-4, `the final-loss line at ${level}: ${JSON.stringify(savings.shapes)}`);

    // the ratio: in the headline and as the arrow annotation at the candidate's mark
    const ratio = await savingsView.locator('.mambalab-headline').getAttribute('data-ratio');
    assert.match(ratio ?? '', /^\d+(\.\d+)?× fewer steps$/);
    assert.ok(savings.annotations.includes(`<b>${ratio}</b>`), `the ratio on the chart: ${JSON.stringify(savings.annotations)}`);
    assert.equal(await plot.locator('.annotation-text', { hasText: ratio! }).count(), 1, 'the ratio is drawn');
    const headline = (await savingsView.locator('.mambalab-headline').textContent()) ?? '';
    assert.match(headline, new RegExp(`^moe-mamba reaches mamba's final loss ${level.toFixed(4)} \\(EMA α = 0.1\\) at step [\\d.]+: ${ratio!.replace('.', '\\.')}`));

    await savingsView.screenshot({ path: join(artifacts, 'kernel-savings.png') });
    await shown.locator('.mambalab-view-loss').screenshot({ path: join(artifacts, 'kernel-experiment-loss.png') });
  });

  test('a MoE model (BlackMamba, two MoE layers) shows its expert heatmap, per-layer bars and balance table', async () => {
    const { cell } = await runCode(page, 3, MOE);
    assert.equal(await cell.locator('.jp-OutputArea-output.mambalab-output').count(), 1);
    assert.deepEqual(await viewKinds(cell), ['loss', 'experts']);
    const experts = cell.locator('.mambalab-view-experts');
    await experts.locator('.mambalab-experts-bars .main-svg').first().waitFor();

    const heatmap = await chartState(experts.locator('.mambalab-experts-heatmap'));
    assert.deepEqual(heatmap.traces.map((t) => [t.type, t.points]), [['heatmap', 2]], 'one heatmap, a row per MoE layer');
    assert.deepEqual(await experts.locator('.mambalab-experts-heatmap').evaluate((node) => (node as unknown as { data: Array<{ y: string[] }> }).data[0]!.y), ['layer 1', 'layer 3']);
    const bars = await chartState(experts.locator('.mambalab-experts-bars'));
    assert.deepEqual(bars.traces.map((t) => [t.name, t.type, t.points]), [['layer 1', 'bar', 4], ['layer 3', 'bar', 4]]);
    assert.equal(await experts.locator('.mambalab-experts-bars .barlayer .trace').count(), 2);
    const shareSums = await experts.locator('.mambalab-experts-bars').evaluate((node) => (node as unknown as { data: Array<{ y: number[] }> }).data.map((t) => t.y.reduce((a, b) => a + b, 0)));
    for (const sum of shareSums) assert.ok(Math.abs(sum - 1) < 1e-9, `a layer's shares sum to 1 (${sum})`);

    const rows = await experts.locator('.mambalab-balance-table tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? '')));
    assert.deepEqual(rows[0], ['layer', 'tokens', 'max/mean', 'CV', 'dropped']);
    // dropless top-1 routing: every one of the 2 × 32 tokens of the step goes to one expert
    assert.deepEqual(rows.slice(1).map((r) => [r[0], r[1]]), [['1', '64'], ['3', '64']]);
    for (const row of rows.slice(1)) assert.ok(Number(row[2]) >= 1 && Number(row[2]) <= 4, `max/mean in [1, 4]: ${row.join(' | ')}`);
    assert.match((await experts.locator('.mambalab-step-label').textContent()) ?? '', /^20 \(20 of 20\)$/);

    await experts.screenshot({ path: join(artifacts, 'kernel-experts.png') });
  });

  test('no errors from the extension reached the console', () => {
    assert.deepEqual(pageErrors, []);
  });
});

/**
 * JupyterLab 4.6.4's debugger extension calls displayModules() after every execute_reply, also
 * for kernels without a debugger (tslab has none), and that rejects with "No active debugger
 * session": an unhandled rejection from JupyterLab itself, not from the extension or the kernel.
 */
function isDebuggerWithoutSession(error: Error): boolean {
  return error.message === 'No active debugger session' && /displayModules/.test(error.stack ?? '');
}

/**
 * Pastes `code` into cell `index`, runs it with Shift+Enter (doing `whileRunning` meanwhile) and
 * waits for it to end; fails with the cell's error if it showed one.
 */
async function runCode(page: Page, index: number, code: string, whileRunning?: () => Promise<void>): Promise<{ cell: Locator; stdout: string }> {
  await enterCode(page, index, code);
  await page.keyboard.press('Shift+Enter');
  await whileRunning?.();
  await waitForCellDone(page, index, 120_000);
  const { stdout, errors } = await cellText(page, index);
  assert.equal(errors, '', `cell ${index} showed an error`);
  return { cell: await showCell(page, index), stdout };
}

/** The kinds of the plot views in an output, in order. */
function viewKinds(scope: Locator): Promise<string[]> {
  return scope.locator('.mambalab-view').evaluateAll((views) => views.map((v) => [...v.classList].find((c) => c.startsWith('mambalab-view-'))!.slice('mambalab-view-'.length)));
}

/** Samples the live loss plot of cell `index` every 50 ms in the page (once there is one), until stopSampling. */
async function startSampling(page: Page, index: number, runName: string): Promise<void> {
  await page.evaluate(
    ([i, name]) => {
      type Chart = Element & { data?: Array<{ name?: string; x?: ArrayLike<number> }> };
      const w = window as unknown as { mambalabSamples: Sample[]; mambalabSampler: number };
      w.mambalabSamples = [];
      let first: Chart | undefined;
      w.mambalabSampler = window.setInterval(() => {
        const cell = document.querySelectorAll('.jp-NotebookPanel .jp-Cell')[i as number];
        const chart = cell?.querySelector<Chart>('.mambalab-loss-plot');
        if (!cell || !chart?.data) return;
        first ??= chart;
        w.mambalabSamples.push({
          running: (cell.querySelector('.jp-InputPrompt')?.textContent ?? '').includes('*'),
          points: chart.data.find((trace) => trace.name === name)?.x?.length ?? 0,
          progress: cell.querySelector('.mambalab-progress-text')?.textContent ?? '',
          sameNode: chart === first,
        });
      }, 50);
    },
    [index, runName] as const,
  );
}

async function stopSampling(page: Page): Promise<Sample[]> {
  return page.evaluate(() => {
    const w = window as unknown as { mambalabSamples: Sample[]; mambalabSampler: number };
    clearInterval(w.mambalabSampler);
    return w.mambalabSamples;
  });
}

// The mambalab extension in a real JupyterLab 4.6.4 in headless Chromium: stored notebook
// outputs (full bundles, as the kernel sends them) render the three plots, bad bundles render a message, the dark theme applies, the
// plot follows its container, a live display updates in place keeping the zoom (through a real
// Python kernel's update_display_data), 100k-point runs stay quick, and a run's .mambalab.json
// opens from the file browser. Screenshots go to test-artifacts/browser/.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium as playwright, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_FLAGS, ensureChromium } from './support/chromium.js';
import { ensureJupyterLab, startJupyterLab, type LabServer } from './support/jupyterlab.js';
import { chartState, openInLab, runCell, setTheme, showCell, themeVariable } from './support/lab-page.js';

const repo = join(import.meta.dirname, '..', '..');
const examples = join(repo, 'contract', 'schema', 'examples');
const artifacts = join(repo, 'test-artifacts', 'browser');
const MIME = 'application/vnd.mambalab.v1+json';

const chromium = ensureChromium();
if ('skip' in chromium) console.warn(`\n[browser tests] SKIPPED: ${chromium.skip}\n`);

describe('the mambalab extension in a real JupyterLab', { skip: 'skip' in chromium ? chromium.skip : false }, () => {
  let server: LabServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    ensureJupyterLab();
    mkdirSync(artifacts, { recursive: true });
    server = await startJupyterLab();
    writeFixtures(server.root);
    browser = await playwright.launch({ executablePath: (chromium as { path: string }).path, args: CHROMIUM_FLAGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && /mambalab/i.test(message.text())) pageErrors.push(message.text());
    });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('stored outputs render the loss, savings and expert plots with their traces', async () => {
    await openInLab(page, server.url, 'plots.ipynb');
    // cells 1-5 hold the outputs: loss, savings, experts, malformed, newer schema
    for (let cell = 1; cell <= 5; cell++) await (await showCell(page, cell)).locator('.mambalab-output').waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('.jp-OutputArea .mambalab-output').count(), 5);
    // our renderer's widget is the output itself, not a div.mambalab-output inside JupyterLab's HTML
    // renderer for the text/html fallback beside it
    assert.equal(await page.locator('.jp-OutputArea-output.mambalab-output').count(), 5, 'every output drawn by the extension');

    const loss = (await showCell(page, 1)).locator('.mambalab-view-loss .mambalab-loss-plot');
    await loss.locator('.main-svg').first().waitFor();
    const lossChart = await chartState(loss);
    assert.deepEqual(
      lossChart.traces.map((t) => t.name),
      ['Transformer (raw)', 'Transformer', 'Transformer (validation)', 'Mamba (raw)', 'Mamba', 'Mamba (validation)', 'MoE-Mamba (32 experts) (raw)', 'MoE-Mamba (32 experts)', 'MoE-Mamba (32 experts) (validation)'],
    );
    assert.equal(await loss.locator('.scatterlayer .trace').count(), 9, 'nine traces drawn as SVG');
    assert.match(lossChart.yTitle, /EMA α = 0.001/);
    assert.equal(await loss.locator('.legendtext').count(), 6, 'legend: three runs, their validation curves');

    const savings = (await showCell(page, 2)).locator('.mambalab-view-savings .mambalab-savings-plot');
    await savings.locator('.main-svg').first().waitFor();
    const savingsChart = await chartState(savings);
    assert.deepEqual(savingsChart.traces.map((t) => t.name), ['Mamba', 'MoE-Mamba (32 experts)', 'marks', 'savings']);
    assert.ok(savingsChart.annotations.includes('<b>2.2× fewer steps</b>'), savingsChart.annotations.join(' | '));
    assert.equal(await savings.locator('.annotation-text', { hasText: '2.2× fewer steps' }).count(), 1, 'the ratio is drawn on the chart');
    assert.match((await page.locator('.mambalab-view-savings .mambalab-headline').textContent()) ?? '', /reaches Mamba's final loss 3\.5144 .* at step 46,400: 2\.2× fewer steps/);

    const experts = (await showCell(page, 3)).locator('.mambalab-view-experts');
    await experts.locator('.mambalab-experts-bars .main-svg').first().waitFor();
    const heatmap = await chartState(experts.locator('.mambalab-experts-heatmap'));
    assert.deepEqual(heatmap.traces.map((t) => [t.type, t.points]), [['heatmap', 8]], 'one heatmap, 8 layer rows');
    const bars = await chartState(experts.locator('.mambalab-experts-bars'));
    assert.equal(bars.traces.length, 8);
    assert.ok(bars.traces.every((t) => t.type === 'bar' && t.points === 32));
    assert.equal(await experts.locator('.mambalab-experts-bars .barlayer .trace').count(), 8);
    assert.equal(await experts.locator('.mambalab-balance-table tr').count(), 9, 'header + 8 layers');
    assert.match((await experts.locator('.mambalab-step-label').textContent()) ?? '', /^100,000 \(41 of 41\)/);
    assert.match((await page.locator('.mambalab-progress-text').textContent()) ?? '', /step 100,000 \/ 100,000/);

    for (const [name, locator] of [['loss', loss], ['savings', savings], ['experts', experts]] as const) {
      await locator.screenshot({ path: join(artifacts, `light-${name}.png`) });
    }
  });

  test('the step slider shows routing at an earlier step', async () => {
    const experts = (await showCell(page, 3)).locator('.mambalab-view-experts');
    const firstRow = async (): Promise<string> => (await experts.locator('.mambalab-balance-table tr').nth(1).textContent()) ?? '';
    const atEnd = await firstRow();
    await experts.locator('.mambalab-step-slider').fill('0');
    await page.waitForFunction(() => document.querySelector('.mambalab-step-label')?.textContent?.startsWith('0 (1 of 41)'));
    assert.notEqual(await firstRow(), atEnd, 'the balance table changed with the step');
    const maxOverMean = Number((await experts.locator('.mambalab-balance-table tr').nth(1).locator('td').nth(2).textContent()) ?? '');
    assert.ok(maxOverMean > 2, `early routing is skewed (max/mean ${maxOverMean})`);
    await experts.screenshot({ path: join(artifacts, 'light-experts-step-0.png') });
  });

  test('malformed and newer-schema bundles show a message, not a blank output', async () => {
    await showCell(page, 5);
    const messages = page.locator('.jp-OutputArea-output .mambalab-message');
    assert.equal(await messages.count(), 2);
    const malformed = (await messages.nth(0).textContent()) ?? '';
    assert.match(malformed, /does not match the display schema/);
    assert.match(malformed, /\/runs\/1\/train\/loss: must be array/);
    assert.match((await messages.nth(1).textContent()) ?? '', /schema version 2; this extension reads version 1/);
    await messages.nth(0).screenshot({ path: join(artifacts, 'light-malformed.png') });
  });

  test('the plot follows the width of the output area', async () => {
    const svg = page.locator('.mambalab-loss-plot .main-svg').first();
    const wide = Number(await svg.getAttribute('width'));
    await page.setViewportSize({ width: 900, height: 1000 });
    await page.waitForFunction((before) => Number(document.querySelector('.mambalab-loss-plot .main-svg')?.getAttribute('width')) < before - 200, wide);
    const narrow = Number(await svg.getAttribute('width'));
    const container = await page.locator('.mambalab-loss-plot').evaluate((node) => node.clientWidth);
    assert.ok(Math.abs(narrow - container) <= 2, `chart ${narrow}px in a ${container}px output`);
    await page.setViewportSize({ width: 1400, height: 1000 });
  });

  test('the dark theme restyles the plots', async () => {
    await setTheme(page, 'JupyterLab Dark');
    const text = await themeVariable(page, '--jp-ui-font-color1');
    const loss = page.locator('.mambalab-loss-plot');
    await page.waitForFunction(
      (color) => ((document.querySelector('.mambalab-loss-plot') as unknown as { _fullLayout?: { font: { color: string } } })._fullLayout?.font.color ?? '') === color,
      text,
    );
    assert.equal((await chartState(loss)).fontColor, text);
    for (const name of ['loss', 'savings', 'experts']) {
      await page.locator(`.mambalab-view-${name}`).screenshot({ path: join(artifacts, `dark-${name}.png`) });
    }
    await setTheme(page, 'JupyterLab Light');
  });

  test('a live display redraws in place and keeps the zoom and the controls (Python kernel, update_display_data)', async () => {
    await openInLab(page, server.url, 'live.ipynb');
    await runCell(page, 0);
    const chart = page.locator('.mambalab-loss-plot');
    await chart.locator('.main-svg').first().waitFor({ timeout: 60_000 });
    const live = JSON.parse(readFileSync(join(server.root, 'live-1.json'), 'utf8')) as { runs: Array<{ train: { step: number[] } }> };
    const before = await chartState(chart);
    assert.equal(before.traces[1]!.lastX, 29_900, 'first display: 300 logged steps');

    // zoom with the mouse, as a user would
    const drag = (await chart.locator('.nsewdrag').first().boundingBox())!;
    await page.mouse.move(drag.x + drag.width * 0.2, drag.y + drag.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(drag.x + drag.width * 0.5, drag.y + drag.height * 0.5, { steps: 8 });
    await page.mouse.up();
    await page.waitForFunction(() => (document.querySelector('.mambalab-loss-plot') as unknown as { layout: { xaxis?: { autorange?: boolean } } }).layout.xaxis?.autorange === false);
    const zoomed = (await chartState(chart)).xRange!;
    const smoothing = page.locator('.mambalab-smoothing');
    await smoothing.fill('0.01');
    await smoothing.dispatchEvent('change');
    await page.waitForFunction(() => /0\.01/.test((document.querySelector('.mambalab-loss-plot') as unknown as { _fullLayout: { yaxis: { title: { text: string } } } })._fullLayout.yaxis.title.text));
    await chart.evaluate((node) => {
      // mark the chart element, and count Plotly.react calls on it (Plotly's own event)
      const gd = node as HTMLElement & { on: (event: string, handler: () => void) => void };
      gd.dataset['probe'] = 'same-node';
      gd.dataset['reacts'] = '0';
      gd.on('plotly_react', () => (gd.dataset['reacts'] = String(Number(gd.dataset['reacts']) + 1)));
    });

    await runCell(page, 1);
    await page.waitForFunction(() => Number((document.querySelector('.mambalab-loss-plot') as HTMLElement).dataset['reacts']) > 0);
    const after = await chartState(chart);
    assert.equal(await chart.evaluate((node) => (node as HTMLElement).dataset['probe']), 'same-node', 'the chart was updated, not replaced');
    assert.deepEqual(after.xRange, zoomed, 'the zoom survived the update');
    assert.equal(await smoothing.inputValue(), '0.01', 'the control kept its value');
    assert.match(after.yTitle, /EMA α = 0.01/);
    assert.match((await page.locator('.mambalab-progress-text').textContent()) ?? '', /step 60,000 \/ 100,000/);
    await chart.screenshot({ path: join(artifacts, 'light-live-zoomed.png') });

    // zoom out (double click): the new steps are there
    await chart.locator('.nsewdrag').first().dblclick();
    const lastStep = live.runs[0]!.train.step.at(-1)!;
    await page.waitForFunction((step) => {
      const gd = document.querySelector('.mambalab-loss-plot') as unknown as { data: Array<{ x: number[] }> };
      return gd.data[1]!.x.at(-1) === step;
    }, lastStep);
    assert.equal((await chartState(chart)).traces[1]!.lastX, lastStep);
  });

  test('100k-point runs are downsampled, and redraw', async () => {
    const started = Date.now();
    await openInLab(page, server.url, 'big.ipynb');
    const chart = page.locator('.mambalab-loss-plot');
    await chart.locator('.scatterlayer .trace').nth(1).waitFor({ timeout: 120_000 });
    const opened = Date.now() - started;
    const state = await chartState(chart);
    assert.equal(state.traces.length, 2);
    for (const trace of state.traces) {
      assert.equal(trace.lastX, 99_999, 'the whole run is on the axis');
      assert.ok(trace.points <= 4000, `${trace.name}: ${trace.points} points drawn of 100,000`);
    }
    // a full redraw (toggle log y), timed in the page from the click to Plotly's afterplot; the
    // time is reported, not asserted (speed belongs in benchmarks: downsampling is what is tested)
    const redrawMs = await chart.evaluate(async (node) => {
      const gd = node as unknown as { on: (event: string, handler: () => void) => void };
      const checkbox = [...document.querySelectorAll('.mambalab-view-loss label')].find((label) => label.textContent === 'log y')!.querySelector('input')!;
      const t0 = performance.now();
      const done = new Promise<void>((resolve) => gd.on('plotly_afterplot', () => resolve()));
      checkbox.click();
      await done;
      return performance.now() - t0;
    });
    console.log(`[browser tests] 100k-point notebook opened and drawn in ${opened} ms; a redraw took ${redrawMs.toFixed(0)} ms`);
    const yType = await chart.evaluate((node) => (node as unknown as { layout: { yaxis: { type: string } } }).layout.yaxis.type);
    assert.equal(yType, 'log', 'the redraw applied the log scale');
    await chart.screenshot({ path: join(artifacts, 'light-100k.png') });
  });

  test("a run's .mambalab.json opens from the file browser in the plot viewer", async () => {
    await page.goto(`${server.url}/lab`);
    const item = page.locator('.jp-DirListing-item', { hasText: 'run.mambalab.json' });
    await item.waitFor({ timeout: 60_000 });
    await item.dblclick();
    const view = page.locator('.jp-MimeDocument .mambalab-view-savings');
    await view.locator('.main-svg').first().waitFor({ timeout: 60_000 });
    assert.deepEqual((await chartState(view.locator('.mambalab-savings-plot'))).traces.map((t) => t.name), ['Mamba', 'MoE-Mamba (32 experts)', 'marks', 'savings']);
    await page.locator('.jp-MimeDocument').first().screenshot({ path: join(artifacts, 'light-file-viewer.png') });

    await page.locator('.jp-DirListing-item', { hasText: 'broken.mambalab.json' }).dblclick();
    const message = page.locator('.jp-MimeDocument .mambalab-message');
    await message.waitFor({ timeout: 60_000 });
    assert.match((await message.textContent()) ?? '', /not valid JSON/);
  });

  test('no errors from the extension reached the console', () => {
    assert.deepEqual(pageErrors, []);
  });
});

/** The files the tests open, in the server's root. */
function writeFixtures(root: string): void {
  copyFileSync(join(import.meta.dirname, 'fixtures', 'plots.ipynb'), join(root, 'plots.ipynb'));
  copyFileSync(join(examples, 'savings.json'), join(root, 'run.mambalab.json'));
  writeFileSync(join(root, 'broken.mambalab.json'), '{"version": 1, "runs": [');

  // live.ipynb: a Python kernel displays a bundle, then updates it (as the mambalab kernel will)
  const loss = JSON.parse(readFileSync(join(examples, 'loss.json'), 'utf8'));
  const upTo = (points: number): object => ({
    ...loss,
    runs: loss.runs.slice(1).map((run: { train: Record<string, number[]> }) => ({
      ...run,
      status: 'running',
      validation: undefined,
      train: Object.fromEntries(Object.entries(run.train).map(([key, values]) => [key, values.slice(0, points)])),
    })),
    plots: [{ kind: 'loss', smoothing: 0.001 }],
    progress: { runId: 'mamba', step: (points - 1) * 100, totalSteps: 100_000 },
  });
  writeFileSync(join(root, 'live-0.json'), JSON.stringify(upTo(300)));
  writeFileSync(join(root, 'live-1.json'), JSON.stringify(upTo(601)));
  const pythonCell = (source: string): object => ({ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source });
  writeFileSync(
    join(root, 'live.ipynb'),
    JSON.stringify(notebook([
      pythonCell(`import json\nfrom IPython.display import display\nMIME = '${MIME}'\nhandle = display({MIME: json.load(open('live-0.json')), 'text/plain': 'loss plot'}, raw=True, display_id=True)`),
      pythonCell(`handle.update({MIME: json.load(open('live-1.json')), 'text/plain': 'loss plot'}, raw=True)`),
    ])),
  );

  // big.ipynb: two runs of 100k logged steps each
  const n = 100_000;
  const step = Array.from({ length: n }, (_, i) => i);
  const bigRun = (id: string, floor: number, seed: number): object => ({
    id,
    name: id,
    status: 'done',
    train: { step, tokens: step.map((s) => s * 65_536), wallS: step.map((s) => Math.round(s * 0.25)), loss: step.map((s) => Number((floor + 7 / Math.sqrt(1 + s / 50) + 0.05 * Math.sin(s * seed)).toFixed(4))) },
  });
  const big = { version: 1, runs: [bigRun('mamba-100k', 3.5, 1.3), bigRun('moe-mamba-100k', 3.4, 2.7)], plots: [{ kind: 'loss', smoothing: 0 }] };
  writeFileSync(join(root, 'big.ipynb'), JSON.stringify(notebook([{ cell_type: 'code', execution_count: null, metadata: {}, source: '# stored output: 2 × 100k points', outputs: [{ output_type: 'display_data', metadata: {}, data: { [MIME]: big, 'text/plain': 'big' } }] }])));
}

function notebook(cells: object[]): object {
  return { cells, metadata: { kernelspec: { display_name: 'Python 3 (ipykernel)', language: 'python', name: 'python3' } }, nbformat: 4, nbformat_minor: 5 };
}

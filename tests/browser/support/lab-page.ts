// Small helpers for driving JupyterLab pages from the browser tests (through playwright-core).
import type { Locator, Page } from 'playwright-core';

/** What a Plotly chart holds, read from its graph div. */
export interface ChartState {
  traces: Array<{ name: string; type: string; points: number; lastX: number | null }>;
  xRange: [number, number] | null;
  yTitle: string;
  fontColor: string;
  annotations: string[];
  /** layout shapes (reference lines), as Plotly resolved them */
  shapes: Array<{ xref: string; yref: string; x0: number; x1: number; y0: number; y1: number }>;
}

export async function chartState(chart: Locator): Promise<ChartState> {
  return chart.evaluate((node) => {
    type Trace = { name?: string; type?: string; x?: ArrayLike<number>; z?: unknown[] };
    const gd = node as unknown as { data: Trace[]; layout: Record<string, any>; _fullLayout: Record<string, any> };
    return {
      traces: gd.data.map((t) => {
        const x = t.x ? Array.from(t.x) : [];
        return { name: t.name ?? '', type: t.type ?? 'scatter', points: t.z ? t.z.length : x.length, lastX: x.length ? (x[x.length - 1] as number) : null };
      }),
      xRange: gd.layout['xaxis']?.autorange === false || gd.layout['xaxis']?.range ? (gd._fullLayout['xaxis'].range as [number, number]) : null,
      yTitle: String(gd._fullLayout['yaxis']?.title?.text ?? ''),
      fontColor: String(gd._fullLayout['font']?.color ?? ''),
      annotations: ((gd._fullLayout['annotations'] ?? []) as Array<{ text: string }>).map((a) => a.text),
      shapes: ((gd._fullLayout['shapes'] ?? []) as Array<Record<string, unknown>>).map((s) => ({
        xref: String(s['xref']),
        yref: String(s['yref']),
        x0: Number(s['x0']),
        x1: Number(s['x1']),
        y0: Number(s['y0']),
        y1: Number(s['y1']),
      })),
    };
  });
}

/** Runs notebook cell `index` of the current notebook through JupyterLab's own command. */
export async function runCell(page: Page, index: number): Promise<void> {
  await page.evaluate(async (i) => {
    const app = (window as unknown as { jupyterapp: any }).jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.sessionContext.ready;
    panel.content.activeCellIndex = i;
    await app.commands.execute('notebook:run-cell');
  }, index);
}

/**
 * Scrolls notebook cell `index` into view and returns its locator. JupyterLab renders the
 * outputs of cells far below the fold only once they come near the viewport.
 */
export async function showCell(page: Page, index: number): Promise<Locator> {
  await page.evaluate(async (i) => {
    const panel = (window as unknown as { jupyterapp: any }).jupyterapp.shell.currentWidget;
    await panel.content.scrollToItem(i, 'start');
  }, index);
  const cell = page.locator('.jp-NotebookPanel .jp-Cell').nth(index);
  await cell.scrollIntoViewIfNeeded();
  return cell;
}

export async function setTheme(page: Page, theme: 'JupyterLab Light' | 'JupyterLab Dark'): Promise<void> {
  await page.evaluate((name) => (window as unknown as { jupyterapp: any }).jupyterapp.commands.execute('apputils:change-theme', { theme: name }), theme);
  await page.waitForFunction((light) => document.body.dataset['jpThemeLight'] === light, theme === 'JupyterLab Light' ? 'true' : 'false');
}

/** The value of a CSS custom property of JupyterLab's current theme. */
export function themeVariable(page: Page, name: string): Promise<string> {
  return page.evaluate((n) => getComputedStyle(document.body).getPropertyValue(n).trim(), name);
}

/** Opens `path` as the only tab (the workspace would reopen earlier tabs), so page-wide selectors see one document. */
export async function openInLab(page: Page, url: string, path: string): Promise<void> {
  await page.goto(`${url}/lab/tree/${path}?reset`);
  await page.waitForSelector('.jp-NotebookPanel, .jp-MimeDocument', { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelectorAll('.jp-NotebookPanel, .jp-MimeDocument').length === 1);
}

/** The editor of notebook cell `index`: clicked into, then `code` inserted as one paste (no auto-closed brackets or auto-indent). */
export async function enterCode(page: Page, index: number, code: string): Promise<void> {
  const editor = (await showCell(page, index)).locator('.jp-InputArea-editor .cm-content');
  await editor.click();
  await page.keyboard.insertText(code);
}

/** The prompt of cell `index` once it ran: "[n]:" (also after an error), not "[ ]:" or "[*]:". */
export async function waitForCellDone(page: Page, index: number, timeoutMs: number): Promise<string> {
  const prompt = page.locator('.jp-NotebookPanel .jp-Cell').nth(index).locator('.jp-InputPrompt');
  await page.waitForFunction(
    (node) => /^\[\d+\]:$/.test(node?.textContent?.trim() ?? ''),
    await prompt.elementHandle(),
    { timeout: timeoutMs },
  );
  return ((await prompt.textContent()) ?? '').trim();
}

/** What cell `index` printed and the errors it showed, for assertion messages. */
export async function cellText(page: Page, index: number): Promise<{ stdout: string; errors: string }> {
  const outputs = page.locator('.jp-NotebookPanel .jp-Cell').nth(index).locator('.jp-OutputArea-output');
  const texts = async (mime: string): Promise<string> => (await outputs.and(page.locator(`[data-mime-type="${mime}"]`)).allTextContents()).join('\n');
  return { stdout: await texts('application/vnd.jupyter.stdout'), errors: await texts('application/vnd.jupyter.stderr') };
}

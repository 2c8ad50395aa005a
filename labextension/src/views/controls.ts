// The few form controls the views need, as plain DOM (JupyterLab styles them via jp-mod classes).

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function labeled(label: string, control: HTMLElement): HTMLLabelElement {
  const wrapper = element('label', 'mambalab-control');
  wrapper.append(element('span', 'mambalab-control-label', label), control);
  return wrapper;
}

export function selectInput<T extends string>(options: ReadonlyArray<readonly [T, string]>, value: T, changed: (value: T) => void): HTMLSelectElement {
  const select = element('select', 'mambalab-select jp-mod-styled');
  setOptions(select, options, value);
  select.addEventListener('change', () => changed(select.value as T));
  return select;
}

export function setOptions(select: HTMLSelectElement, options: ReadonlyArray<readonly [string, string]>, value: string): void {
  const same = options.length === select.options.length && options.every(([v, text], i) => select.options[i]?.value === v && select.options[i]?.text === text);
  if (!same) {
    select.replaceChildren(
      ...options.map(([v, text]) => {
        const option = document.createElement('option');
        option.value = v;
        option.text = text;
        return option;
      }),
    );
  }
  select.value = value;
}

export function checkbox(label: string, checked: boolean, changed: (checked: boolean) => void): HTMLLabelElement {
  const input = element('input', 'mambalab-checkbox');
  input.type = 'checkbox';
  input.checked = checked;
  input.addEventListener('change', () => changed(input.checked));
  const wrapper = element('label', 'mambalab-control');
  wrapper.append(input, element('span', 'mambalab-control-label', label));
  return wrapper;
}

/** A message in place of a chart: never leave an output blank. */
export function messageBox(title: string, details: readonly string[], kind: 'error' | 'note' = 'error'): HTMLDivElement {
  const box = element('div', `mambalab-message mambalab-${kind}`);
  box.append(element('div', 'mambalab-message-title', title));
  if (details.length > 0) {
    const list = element('ul', 'mambalab-message-details');
    for (const line of details) list.append(element('li', '', line));
    box.append(list);
  }
  return box;
}

// Building the page from data. Text always goes in as text nodes or textContent, never parsed as
// HTML: agent output, paths, diffs and messages cannot become markup.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'selected') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// An in-console link: the router intercepts clicks on a[data-link].
export function link(href, ...children) {
  return h('a', { href, dataset: { link: '' } }, ...children);
}

export function badge(status) {
  return h('span', { class: `badge badge-${String(status).replace(/[^a-z_-]/gi, '')}` }, status);
}

export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  return h('time', { datetime: iso, title: iso }, date.toLocaleString());
}

export function shortSha(sha) {
  return sha ? h('code', { title: sha }, sha.slice(0, 10)) : h('span', { class: 'muted' }, '—');
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 100) / 10;
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast toast-${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

// A problem+json answer, shown the way the API words it (detail, then field errors).
export function problemText(error) {
  if (!error || !error.problem) return String(error && error.message ? error.message : error);
  const { detail, title, errors } = error.problem;
  let text = detail || title || `HTTP ${error.status}`;
  if (errors) {
    text += ' ' + Object.entries(errors).map(([field, messages]) => `${field}: ${[messages].flat().join(' ')}`).join('; ');
  }
  return text;
}

export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, problemText(error));
}

// Runs `action` while `button` is disabled; failures become a toast. Returns the action's result.
export async function busy(button, action) {
  button.disabled = true;
  try {
    return await action();
  } catch (error) {
    toast(problemText(error), 'error');
    return undefined;
  } finally {
    button.disabled = false;
  }
}

export function table(headers, rows, { empty = 'Nothing yet.' } = {}) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('table', { class: 'grid' },
    h('thead', null, h('tr', null, headers.map((name) => h('th', null, name)))),
    h('tbody', null, rows));
}

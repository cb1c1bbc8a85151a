// Unified diffs as text lines, each classed by its first character; never parsed as HTML.
import { h } from './dom.js';

const LIMIT = 4000;

function kind(line) {
  if (line.startsWith('@@')) return 'hunk';
  if (line.startsWith('+++') || line.startsWith('---') || line.startsWith('diff ') || line.startsWith('index ')
    || line.startsWith('new file') || line.startsWith('deleted file') || line.startsWith('rename ')
    || line.startsWith('similarity ') || line.startsWith('Binary ')) return 'meta';
  if (line.startsWith('+')) return 'add';
  if (line.startsWith('-')) return 'del';
  return 'ctx';
}

export function renderDiff(text) {
  if (!text) return h('p', { class: 'muted' }, 'No changes.');
  const lines = text.replace(/\n$/, '').split('\n');
  const pre = h('pre', { class: 'diff' });
  const shown = lines.length > LIMIT ? lines.slice(0, LIMIT) : lines;
  const fragment = document.createDocumentFragment();
  for (const line of shown) fragment.append(h('span', { class: `diff-${kind(line)}` }, `${line}\n`));
  pre.append(fragment);
  if (shown.length < lines.length) {
    const more = h('button', { type: 'button', class: 'secondary' }, `Show all ${lines.length} lines`);
    more.addEventListener('click', () => {
      const rest = document.createDocumentFragment();
      for (const line of lines.slice(LIMIT)) rest.append(h('span', { class: `diff-${kind(line)}` }, `${line}\n`));
      pre.append(rest);
      more.remove();
    });
    return h('div', null, pre, more);
  }
  return pre;
}

export function diffStats(stats) {
  if (!stats) return null;
  return h('p', { class: 'diffstat' }, `${stats.filesChanged} files · `,
    h('span', { class: 'diff-add' }, `+${stats.additions}`), ' ',
    h('span', { class: 'diff-del' }, `−${stats.deletions}`));
}

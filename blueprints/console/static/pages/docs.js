// A project's managed docs (PROJECT_MAP, DATABASE_SCHEMA, ARCHITECTURE_DIAGRAMS, CHANGELOG_AI)
// rendered as markdown with their Mermaid diagrams drawn; the diagrams as computed now; the changelog.
import { api, can, get } from '../api.js';
import { busy, clear, h, link, problemText, table, time, toast } from '../dom.js';

export async function render(main, { project: projectId }, search) {
  const project = await get(`/api/projects/${projectId}`);
  const nav = h('nav', { class: 'doc-list' });
  const content = h('article', { class: 'doc' });
  main.append(
    h('p', { class: 'crumbs' }, link(`/console/projects/${project.id}`, project.name), ' › docs'),
    h('h1', null, 'Docs'),
    h('div', { class: 'docs-layout' }, nav, content),
  );

  let docs = [];
  try {
    docs = (await get(`/api/projects/${projectId}/docs`)).data;
  } catch (error) {
    clear(content, h('p', { class: 'error', role: 'alert' }, problemText(error)));
    return;
  }
  const select = (view) => {
    const url = new URL(location.href);
    url.searchParams.set('doc', view);
    history.replaceState(null, '', url);
    show(view);
  };
  const entry = (view, label, extra) => h('li', null,
    h('button', { type: 'button', class: 'link', dataset: { doc: view }, onclick: () => select(view) }, label), extra || '');
  clear(nav, h('ul', null,
    docs.map((doc) => entry(doc.slug, doc.title, doc.exists ? h('span', { class: 'muted' }, ' · ', time(doc.updatedAt)) : h('span', { class: 'muted' }, ' (not written yet)'))),
    entry('diagrams', 'Diagrams, computed now'),
    entry('changelog', 'Changelog entries')),
  can('projects:write') ? regenerateButton(projectId) : null);

  async function show(view) {
    for (const button of nav.querySelectorAll('button[data-doc]')) button.classList.toggle('active', button.dataset.doc === view);
    clear(content, h('p', { class: 'muted' }, 'Loading…'));
    try {
      if (view === 'diagrams') {
        const answer = await get(`/api/projects/${projectId}/diagrams`);
        await showMarkdown(content, answer.markdown);
      } else if (view === 'changelog') {
        const answer = await get(`/api/projects/${projectId}/changelog?limit=200`);
        clear(content, h('h2', null, 'Changelog'), table(['Date', 'Run', 'Title', 'Summary', 'Files'], answer.data.map((item) => h('tr', null,
          h('td', null, item.date),
          h('td', null, link(`/console/runs/${item.runId}`, `#${item.runId}`)),
          h('td', null, item.title),
          h('td', null, item.summary),
          h('td', null, item.files.map((file) => h('div', null, h('code', null, file.path), ` (${file.changeType})`))))),
        { empty: 'No changelog entries yet.' }));
      } else {
        const doc = await get(`/api/projects/${projectId}/docs/${encodeURIComponent(view)}`);
        await showMarkdown(content, doc.markdown, h('p', { class: 'muted' }, h('code', null, doc.path), ' · updated ', time(doc.updatedAt)));
      }
    } catch (error) {
      clear(content, h('p', { class: 'error', role: 'alert' }, problemText(error)));
    }
  }

  const first = docs.find((doc) => doc.exists);
  await show(search.get('doc') || (first ? first.slug : 'diagrams'));
}

async function showMarkdown(content, markdown, before) {
  const { renderMarkdown } = await import('../markdown.js');
  const body = h('div');
  clear(content, before || null, body);
  await renderMarkdown(body, markdown);
}

function regenerateButton(projectId) {
  const button = h('button', { type: 'button', class: 'secondary' }, 'Regenerate the docs');
  button.addEventListener('click', () => busy(button, async () => {
    await api('POST', `/api/projects/${projectId}/docs/regenerate`);
    toast('Regenerating the docs: reload in a moment');
  }));
  return button;
}

// A project's snapshots: take one, compare one with the working tree or another, restore one.
import { all, api, can, get } from '../api.js';
import { badge, busy, clear, h, link, shortSha, table, time, toast } from '../dom.js';
import { diffStats, renderDiff } from '../diff.js';

export async function render(main, { project: projectId }) {
  const project = await get(`/api/projects/${projectId}`);
  const list = h('section', { class: 'snapshots' });
  const result = h('section', { class: 'compare-result' });

  async function refresh() {
    const snapshots = await all(`/api/projects/${projectId}/snapshots`);
    const others = (snapshot) => h('select', { 'aria-label': 'Compare against' },
      h('option', { value: 'current' }, 'the working tree'),
      snapshots.filter((other) => other.id !== snapshot.id).map((other) => h('option', { value: String(other.id) }, `#${other.id} ${other.kind}`)));
    clear(list, table(['Snapshot', 'Kind', 'Run', 'Files', 'Commit', 'Taken', ''], snapshots.map((snapshot) => {
      const against = others(snapshot);
      const compare = h('button', { type: 'button', class: 'secondary', dataset: { action: 'compare' } }, 'Compare');
      compare.addEventListener('click', () => busy(compare, async () => {
        const value = against.value === 'current' ? 'current' : Number(against.value);
        const answer = await api('POST', `/api/snapshots/${snapshot.id}/compare`, { against: value });
        clear(result,
          h('h2', null, `Snapshot #${snapshot.id} against ${value === 'current' ? 'the working tree' : `#${value}`}`),
          diffStats(answer.stats),
          answer.files.length ? h('ul', null, answer.files.map((file) => h('li', null, badge(file.changeType), ' ', h('code', null, file.path)))) : null,
          renderDiff(answer.diff));
      }));
      const restore = can('projects:write') ? h('button', { type: 'button', class: 'secondary', dataset: { action: 'restore' } }, 'Restore') : null;
      if (restore) {
        restore.addEventListener('click', () => {
          if (!window.confirm(`Make the working tree match snapshot #${snapshot.id}? What it holds now is snapshotted first.`)) return;
          busy(restore, async () => {
            const answer = await api('POST', `/api/snapshots/${snapshot.id}/restore`);
            toast(`Restored #${answer.restored.id}; the state before is snapshot #${answer.checkpoint.id}`);
            await refresh();
          });
        });
      }
      return h('tr', { dataset: { snapshotId: snapshot.id } },
        h('td', null, `#${snapshot.id} `, snapshot.description || ''),
        h('td', null, badge(snapshot.kind)),
        h('td', null, snapshot.runId ? link(`/console/runs/${snapshot.runId}`, `#${snapshot.runId}`) : '—'),
        h('td', null, snapshot.fileCount),
        h('td', null, shortSha(snapshot.commitSha)),
        h('td', null, time(snapshot.createdAt)),
        h('td', { class: 'row-actions' }, against, compare, restore));
    }), { empty: 'No snapshots yet.' }));
  }

  main.append(
    h('p', { class: 'crumbs' }, link(`/console/projects/${project.id}`, project.name), ' › snapshots'),
    h('h1', null, 'Snapshots'),
    can('projects:write') ? takeForm(projectId, refresh) : null,
    list,
    result,
  );
  await refresh();
}

function takeForm(projectId, refresh) {
  const description = h('input', { name: 'description', maxlength: 500, placeholder: 'What this state is' });
  const submit = h('button', { type: 'submit' }, 'Take snapshot');
  return h('form', {
    class: 'inline card',
    onsubmit: (event) => {
      event.preventDefault();
      busy(submit, async () => {
        const snapshot = await api('POST', `/api/projects/${projectId}/snapshots`, { description: description.value });
        toast(`Snapshot #${snapshot.id}: ${snapshot.fileCount} files`);
        description.value = '';
        await refresh();
      });
    },
  }, h('label', null, 'Description', description), submit);
}

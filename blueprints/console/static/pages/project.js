// One project: its status and actions, its runs, and the form that drafts a new run.
import { all, api, can, get } from '../api.js';
import { badge, busy, clear, h, link, shortSha, table, time, toast } from '../dom.js';
import { navigate } from '../app.js';
import { MOVING, projectActions, projectStatus } from './projects.js';

const ACTIVE_RUNS = ['queued', 'running', 'paused'];

export async function render(main, { project: projectId }) {
  let timer = null;
  let stopped = false;
  const header = h('section', { class: 'project-header' });
  const runs = h('section', { class: 'runs' });
  const formSlot = h('section');
  let project = null;

  async function refresh() {
    const [fresh, page] = await Promise.all([get(`/api/projects/${projectId}`), get(`/api/runs?projectId=${projectId}&limit=50`)]);
    const becameReady = project && project.status !== 'ready' && fresh.status === 'ready';
    project = fresh;
    clear(header,
      h('h1', null, project.name),
      h('p', null, projectStatus(project), ' ', h('code', { class: 'url' }, project.repositoryUrl),
        ' · branch ', h('code', null, project.defaultBranch || '—'), ' · head ', shortSha(project.headSha)),
      project.description ? h('p', { class: 'muted' }, project.description) : null,
      h('p', { class: 'row-actions' },
        link(`/console/projects/${project.id}/snapshots`, 'Snapshots'), ' ',
        link(`/console/projects/${project.id}/docs`, 'Docs'), ' ',
        projectActions(project, refresh)));
    clear(runs, h('h2', null, 'Runs'), table(['Run', 'Title', 'Status', 'Review', 'Agent', 'Created'], page.data.map((run) => h('tr', { dataset: { runId: run.id } },
      h('td', null, link(`/console/runs/${run.id}`, `#${run.id}`)),
      h('td', null, link(`/console/runs/${run.id}`, run.title)),
      h('td', null, badge(run.status), run.attempt > 1 ? h('span', { class: 'muted' }, ` attempt ${run.attempt}`) : ''),
      h('td', null, run.reviewStatus ? badge(run.reviewStatus) : ''),
      h('td', null, run.selectedAgent, run.selectedModel ? h('span', { class: 'muted' }, ` ${run.selectedModel}`) : ''),
      h('td', null, time(run.createdAt)))), { empty: 'No runs yet.' }));
    if (becameReady || (!formSlot.firstChild && project.status === 'ready')) {
      clear(formSlot, project.status === 'ready' && can('runs:start') ? await newRunForm(project) : null);
    }
    clearTimeout(timer);
    const moving = MOVING.includes(project.status) || page.data.some((run) => ACTIVE_RUNS.includes(run.status));
    if (!stopped && moving) timer = setTimeout(() => refresh().catch(() => {}), MOVING.includes(project.status) ? 2000 : 5000);
  }

  main.append(header, formSlot, runs);
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

async function newRunForm(project) {
  // The providers (and their models) come from settings:read; without it, names are typed in.
  let providers = [];
  if (can('settings:read')) {
    try {
      providers = (await all('/api/settings/providers')).filter((provider) => provider.enabled);
    } catch { /* typed in instead */ }
  }
  const title = h('input', { name: 'title', required: true, maxlength: 200 });
  const prompt = h('textarea', { name: 'prompt', required: true, rows: 5 });
  const agent = providers.length
    ? h('select', { name: 'selectedAgent' }, providers.map((provider) => h('option', {
      value: provider.key, selected: provider.key === project.defaultAgent,
    }, `${provider.name}${provider.available ? '' : ' (not installed)'}`)))
    : h('input', { name: 'selectedAgent', required: true, value: project.defaultAgent || '' });
  const model = h('select', { name: 'selectedModel' });
  const fillModels = () => {
    const provider = providers.find((p) => p.key === agent.value);
    const models = provider ? provider.models : [];
    clear(model, models.length ? models.map((name) => h('option', { value: name, selected: name === project.defaultModel }, name))
      : h('option', { value: '' }, '(default)'));
  };
  agent.addEventListener('change', fillModels);
  fillModels();
  const rag = h('input', { type: 'checkbox', name: 'ragEnabled' });
  const safe = h('input', { type: 'checkbox', name: 'safeMode' });
  const submit = h('button', { type: 'submit' }, 'Create draft');
  const startToo = h('input', { type: 'checkbox', name: 'startNow' });
  return h('details', { class: 'card new-run', open: true },
    h('summary', null, 'New run'),
    h('form', {
      onsubmit: (event) => {
        event.preventDefault();
        busy(submit, async () => {
          const body = {
            projectId: project.id, title: title.value, prompt: prompt.value, selectedAgent: agent.value,
            ragEnabled: rag.checked, safeMode: safe.checked,
          };
          if (model.value) body.selectedModel = model.value;
          const run = await api('POST', '/api/runs', body);
          if (startToo.checked) await api('POST', `/api/runs/${run.id}/start`);
          toast(`Run #${run.id} ${startToo.checked ? 'started' : 'drafted'}`);
          navigate(`/runs/${run.id}`);
        });
      },
    },
    h('label', null, 'Title', title),
    h('label', null, 'Prompt', prompt),
    h('div', { class: 'inline' }, h('label', null, 'Agent', agent), h('label', null, 'Model', model)),
    h('div', { class: 'inline' },
      h('label', { class: 'check' }, rag, ' Prefix the prompt with matching code (RAG)'),
      h('label', { class: 'check' }, safe, ' Safe mode (no shell)'),
      h('label', { class: 'check' }, startToo, ' Start at once')),
    submit));
}

// Projects: the list with each one's status, pull and re-clone, and registering a repository.
import { all, api, can } from '../api.js';
import { badge, busy, clear, h, link, shortSha, table, time, toast } from '../dom.js';
import { navigate } from '../app.js';

// Statuses a job is still moving: the list is re-read until none is left in one.
export const MOVING = ['pending', 'cloning', 'indexing'];

export function projectActions(project, refresh) {
  const buttons = [];
  if (!can('projects:write')) return buttons;
  const action = (name, label) => {
    const button = h('button', { type: 'button', class: 'secondary', dataset: { action: name } }, label);
    button.addEventListener('click', () => busy(button, async () => {
      await api('POST', `/api/projects/${project.id}/${name}`);
      toast(`${label}: queued for ${project.name}`);
      await refresh();
    }));
    return button;
  };
  if (project.status === 'ready') buttons.push(action('pull', 'Pull'));
  if (project.status === 'error' || project.status === 'archived') buttons.push(action('clone', 'Re-clone'));
  return buttons;
}

export function projectStatus(project) {
  return h('span', { class: 'status' }, badge(project.status),
    project.progress !== null && project.progress !== undefined && MOVING.includes(project.status) ? ` ${project.progress}%` : '',
    project.statusDetail ? h('span', { class: 'muted' }, ` ${project.statusDetail}`) : '');
}

export async function render(main) {
  let timer = null;
  let stopped = false;
  const list = h('section', { class: 'projects' });

  async function refresh() {
    const projects = await all('/api/projects');
    clear(list, table(['Project', 'Status', 'Repository', 'Head', 'Updated', ''], projects.map((project) => h('tr', { dataset: { projectId: project.id } },
      h('td', null, link(`/console/projects/${project.id}`, project.name)),
      h('td', null, projectStatus(project)),
      h('td', null, h('code', { class: 'url' }, project.repositoryUrl)),
      h('td', null, shortSha(project.headSha)),
      h('td', null, time(project.updatedAt)),
      h('td', { class: 'row-actions' }, projectActions(project, refresh)))), { empty: 'No projects yet: register a repository below.' }));
    clearTimeout(timer);
    if (!stopped && projects.some((project) => MOVING.includes(project.status))) timer = setTimeout(refresh, 2500);
  }

  main.append(h('h1', null, 'Projects'), list);
  if (can('projects:write')) main.append(newProjectForm());
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function newProjectForm() {
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const url = h('input', { name: 'repositoryUrl', required: true, placeholder: 'https://…, git@host:path or file://…' });
  const branch = h('input', { name: 'defaultBranch', placeholder: 'detected from the remote' });
  const submit = h('button', { type: 'submit' }, 'Add project');
  return h('form', {
    class: 'card new-project',
    onsubmit: (event) => {
      event.preventDefault();
      busy(submit, async () => {
        const body = { name: name.value, repositoryUrl: url.value };
        if (branch.value) body.defaultBranch = branch.value;
        const project = await api('POST', '/api/projects', body);
        toast(`${project.name}: cloning`);
        navigate(`/projects/${project.id}`);
      });
    },
  },
  h('h2', null, 'Add a project'),
  h('label', null, 'Name', name),
  h('label', null, 'Repository URL', url),
  h('label', null, 'Default branch', branch),
  submit);
}

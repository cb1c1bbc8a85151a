// A run: live timeline, changed files with diffs, commands with output, summary, snapshots, and the
// actions the run's state and the token's abilities allow.
import { all, api, can, get, session } from '../api.js';
import { badge, busy, clear, duration, h, link, problemText, shortSha, table, time, toast } from '../dom.js';
import { elevateDialog } from '../app.js';
import { diffStats, renderDiff } from '../diff.js';
import { RunStream } from '../stream.js';
import { Timeline } from '../timeline.js';

// runner.states.RUN_ACTIONS, with the ability each route requires and what else it needs.
const ACTIONS = [
  { name: 'start', label: 'Start', from: ['draft'], ability: 'runs:start' },
  { name: 'pause', label: 'Pause', from: ['running'], ability: 'runs:control' },
  { name: 'resume', label: 'Resume', from: ['paused'], ability: 'runs:control' },
  { name: 'retry', label: 'Retry', from: ['failed', 'cancelled'], ability: 'runs:control' },
  { name: 'approve', label: 'Approve…', from: ['completed'], ability: 'runs:control', when: (run) => run.reviewStatus !== 'approved', review: true },
  { name: 'reject', label: 'Reject…', from: ['completed'], ability: 'runs:control', when: (run) => run.reviewStatus !== 'rejected', review: true },
  { name: 'commit', label: 'Commit', from: ['completed'], ability: 'git:commit', when: (run) => run.reviewStatus === 'approved' && !run.commitSha },
  {
    name: 'push',
    label: 'Push',
    from: ['completed'],
    ability: 'git:push',
    when: (run) => run.reviewStatus === 'approved' && run.commitSha && run.pushedSha !== run.commitSha
      && !(run.push && run.push.status === 'queued'),
  },
  { name: 'cancel', label: 'Cancel', from: ['draft', 'queued', 'running', 'paused'], ability: 'runs:control', confirm: 'Cancel this run?' },
];
const TERMINAL = ['completed', 'failed', 'cancelled'];
// Events after which the run's own row (status, review, commit, push) is worth reading again.
const RUN_CHANGING = new Set(['status_changed', 'summary_ready', 'review_submitted', 'commit_created', 'pushed', 'error']);
const TABS = [['timeline', 'Timeline'], ['files', 'Files'], ['commands', 'Commands'], ['summary', 'Summary'], ['snapshots', 'Snapshots']];

export function allowedActions(run, abilities = session.abilities) {
  return ACTIONS.filter((action) => action.from.includes(run.status) && can(action.ability, abilities) && (!action.when || action.when(run)));
}

export async function render(main, { run: runId }, search) {
  let run = await get(`/api/runs/${runId}`);
  const header = h('section', { class: 'run-header' });
  const actionBar = h('div', { class: 'actions run-actions' });
  const reviewSlot = h('div');
  const streamState = h('span', { class: 'stream-state', dataset: { state: 'idle' } }, 'not connected');
  const details = h('aside', { class: 'event-details' }, h('p', { class: 'muted' }, 'Select an event to see all of it.'));
  const timeline = new Timeline({ onSelect: (event) => showEvent(details, event) });
  const panels = {
    timeline: h('div', { class: 'panel timeline-panel' }, timeline.element, details),
    files: h('div', { class: 'panel' }),
    commands: h('div', { class: 'panel' }),
    summary: h('div', { class: 'panel' }),
    snapshots: h('div', { class: 'panel' }),
  };
  const loaders = { files: loadFiles, commands: loadCommands, summary: loadSummary, snapshots: loadSnapshots };
  const stale = new Set(Object.keys(loaders));
  let tab = TABS.some(([name]) => name === search.get('tab')) ? search.get('tab') : 'timeline';
  const tabBar = h('nav', { class: 'tabs', role: 'tablist' });
  let refreshTimer = null;
  let staleTimer = null;

  function drawHeader() {
    const push = run.push;
    clear(header,
      h('p', { class: 'crumbs' }, link(`/console/projects/${run.projectId}`, `Project ${run.projectId}`), ' › run'),
      h('h1', null, h('span', { class: 'muted' }, `#${run.id} `), run.title),
      h('p', { class: 'meta' },
        h('span', { class: 'run-status' }, badge(run.status)), ' ',
        run.reviewStatus ? badge(run.reviewStatus) : null, ' ',
        streamState),
      h('dl', { class: 'facts' },
        h('dt', null, 'Agent'), h('dd', null, run.selectedAgent, run.selectedModel ? ` · ${run.selectedModel}` : ''),
        h('dt', null, 'Branch'), h('dd', null, run.branch ? h('code', null, run.branch) : '—', run.attempt > 1 ? ` (attempt ${run.attempt})` : ''),
        h('dt', null, 'Commit'), h('dd', { class: 'commit-sha' }, shortSha(run.commitSha)),
        h('dt', null, 'Pushed'), h('dd', null, push ? `${push.status}${push.error ? `: ${push.error}` : ''}` : '—'),
        h('dt', null, 'Started'), h('dd', null, time(run.startedAt)),
        h('dt', null, 'Ran'), h('dd', null, duration(run.timeline && run.timeline.runningMs)),
        run.statusDetail ? [h('dt', null, 'Detail'), h('dd', null, run.statusDetail)] : null),
      h('details', { class: 'prompt' }, h('summary', null, 'Prompt'), h('pre', null, run.prompt)));
    const actions = allowedActions(run);
    clear(actionBar, actions.map((action) => h('button', {
      type: 'button',
      class: action.name === 'cancel' || action.name === 'reject' ? 'secondary' : '',
      dataset: { action: action.name },
      onclick: (event) => (action.review ? reviewForm(action.name) : act(event.currentTarget, action)),
    }, action.label)));
    const pushable = run.status === 'completed' && run.reviewStatus === 'approved' && run.commitSha && run.pushedSha !== run.commitSha;
    if (pushable && !can('git:push')) {
      actionBar.append(h('button', { type: 'button', class: 'link', onclick: () => elevateDialog(['git:push']) }, 'Elevate to push…'));
    }
  }

  async function act(button, action) {
    if (action.confirm && !window.confirm(action.confirm)) return;
    await busy(button, async () => {
      const answer = await api('POST', `/api/runs/${run.id}/${action.name}`);
      run = { ...run, ...answer };
      toast(`${action.label}: done`);
      drawHeader();
      await refreshRun();
      stream.catchUp();
    });
  }

  function reviewForm(decision) {
    const notes = h('textarea', { name: 'notes', rows: 3, placeholder: 'Notes (optional)' });
    const commitToo = h('input', { type: 'checkbox', name: 'commit' });
    const submit = h('button', { type: 'submit', dataset: { action: `${decision}-submit` } }, decision === 'approve' ? 'Approve' : 'Reject');
    clear(reviewSlot, h('form', {
      class: 'card review',
      onsubmit: (event) => {
        event.preventDefault();
        busy(submit, async () => {
          const body = { notes: notes.value || null };
          if (decision === 'approve' && commitToo.checked) body.commit = true;
          const answer = await api('POST', `/api/runs/${run.id}/${decision}`, body);
          run = { ...run, ...answer };
          clear(reviewSlot);
          toast(decision === 'approve' ? `Approved${answer.commit ? ` and committed ${answer.commit.sha.slice(0, 10)}` : ''}` : 'Rejected');
          drawHeader();
          await refreshRun();
          stream.catchUp();
        });
      },
    },
    h('h2', null, decision === 'approve' ? 'Approve this run' : 'Reject this run'),
    notes,
    decision === 'approve' && can('git:commit') ? h('label', { class: 'check' }, commitToo, ' Commit it too') : null,
    h('div', { class: 'actions' }, submit, h('button', { type: 'button', class: 'secondary', onclick: () => clear(reviewSlot) }, 'Cancel'))));
  }

  async function refreshRun() {
    try {
      run = await get(`/api/runs/${run.id}`);
      drawHeader();
    } catch (error) {
      toast(problemText(error), 'error');
    }
  }

  function refreshRunSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshRun, 400);
  }

  function markStale(names) {
    for (const name of names) stale.add(name);
    clearTimeout(staleTimer);
    staleTimer = setTimeout(() => {
      if (stale.has(tab)) showTab(tab);
    }, 1000);
  }

  function drawTabs() {
    clear(tabBar, TABS.map(([name, label]) => h('button', {
      type: 'button', role: 'tab', class: name === tab ? 'tab active' : 'tab', 'aria-selected': String(name === tab), dataset: { tab: name },
      onclick: () => {
        const url = new URL(location.href);
        url.searchParams.set('tab', name);
        history.replaceState(null, '', url);
        showTab(name);
      },
    }, label)));
  }

  async function showTab(name) {
    tab = name;
    drawTabs();
    for (const [key, panel] of Object.entries(panels)) panel.hidden = key !== name;
    if (loaders[name] && stale.has(name)) {
      stale.delete(name);
      try {
        await loaders[name](panels[name], run);
      } catch (error) {
        clear(panels[name], h('p', { class: 'error', role: 'alert' }, problemText(error)));
      }
    }
    if (name === 'timeline') timeline.schedule();
  }

  const stream = new RunStream(run.id, {
    onEvents(batch) {
      timeline.add(batch);
      const touched = new Set();
      let changed = false;
      for (const event of batch) {
        if (event.eventType === 'status_changed' && event.data && event.data.to) {
          run.status = event.data.to;
          changed = true;
        }
        if (RUN_CHANGING.has(event.eventType)) changed = true;
        if (event.eventType.startsWith('file_') || event.eventType === 'snapshot_created') touched.add('files').add('summary');
        if (event.eventType.startsWith('command_')) touched.add('commands').add('summary');
        if (event.eventType === 'snapshot_created') touched.add('snapshots');
        if (event.eventType === 'summary_ready' || event.eventType === 'token_usage') touched.add('summary');
      }
      if (changed) {
        drawHeader();
        refreshRunSoon();
      }
      if (touched.size) markStale(touched);
    },
    onState(state, stats) {
      const labels = { connecting: 'connecting…', live: '● live', reconnecting: 'reconnecting…', ended: 'ended', closed: 'closed', idle: 'not connected' };
      streamState.textContent = labels[state] || state;
      Object.assign(streamState.dataset, {
        state, opens: stats.opens, tokenFetches: stats.tokenFetches, duplicates: stats.duplicates, errors: stats.errors,
      });
      timeline.element.dataset.duplicates = String(stats.duplicates);
    },
    onEnd() {
      refreshRun();
      markStale(Object.keys(loaders));
    },
  });

  main.append(header, actionBar, reviewSlot, tabBar, ...Object.values(panels));
  drawHeader();
  await showTab(tab);
  stream.open(0);
  return () => {
    stream.close();
    clearTimeout(refreshTimer);
    clearTimeout(staleTimer);
  };
}

function showEvent(panel, event) {
  clear(panel,
    h('h3', null, `#${event.id} ${event.eventType}`),
    h('p', null, badge(event.severity), ' ', time(event.createdAt), event.path ? [' · ', h('code', null, event.path)] : null),
    event.message ? h('pre', { class: 'event-message-full' }, event.message) : null,
    event.data && Object.keys(event.data).length ? h('pre', { class: 'event-data' }, JSON.stringify(event.data, null, 2)) : null);
}

async function loadFiles(panel, run) {
  const files = await all(`/api/runs/${run.id}/files`);
  const diffSlot = h('div', { class: 'file-diff' });
  clear(panel, table(['Path', 'Change', '+', '−'], files.map((file) => h('tr', { dataset: { fileId: file.id } },
    h('td', null, h('button', {
      type: 'button',
      class: 'link',
      onclick: async () => {
        try {
          const detail = await get(`/api/runs/${run.id}/files/${file.id}`);
          clear(diffSlot, h('h3', null, detail.path), renderDiff(detail.diff));
        } catch (error) {
          clear(diffSlot, h('p', { class: 'error' }, problemText(error)));
        }
      },
    }, file.path), file.oldPath ? h('span', { class: 'muted' }, ` (was ${file.oldPath})`) : ''),
    h('td', null, badge(file.changeType)),
    h('td', { class: 'diff-add' }, file.binary ? 'bin' : `+${file.additions}`),
    h('td', { class: 'diff-del' }, file.binary ? '' : `−${file.deletions}`))), { empty: 'No files changed (yet).' }), diffSlot);
}

async function loadCommands(panel, run) {
  const commands = await all(`/api/runs/${run.id}/commands`);
  const output = h('div', { class: 'command-output' });
  clear(panel, table(['Command', 'Exit', 'Took', 'Started'], commands.map((command) => h('tr', { dataset: { commandId: command.id } },
    h('td', null, h('button', { type: 'button', class: 'link', onclick: () => showCommand(output, run, command) }, h('code', null, command.command))),
    h('td', null, command.exitCode === null ? h('span', { class: 'muted' }, 'running') : badge(command.exitCode === 0 ? '0' : String(command.exitCode))),
    h('td', null, duration(command.durationMs)),
    h('td', null, time(command.startedAt)))), { empty: 'No commands run (yet).' }), output);
}

async function showCommand(output, run, command) {
  try {
    const detail = await get(`/api/runs/${run.id}/commands/${command.id}`);
    // The signed links need no token, and none is sent with them.
    const read = async (url) => {
      if (!url) return '';
      const response = await fetch(url, { credentials: 'omit', cache: 'no-store' });
      return response.ok ? response.text() : `(${response.status}: the output link failed)`;
    };
    const [stdout, stderr] = await Promise.all([read(detail.stdoutUrl), read(detail.stderrUrl)]);
    clear(output,
      h('h3', null, h('code', null, detail.command)),
      h('p', { class: 'muted' }, `exit ${detail.exitCode ?? '—'} · ${duration(detail.durationMs)} · ${detail.cwd || ''}`),
      h('h4', null, 'stdout'), h('pre', { class: 'stdout' }, stdout || '(empty)'),
      stderr ? [h('h4', null, 'stderr'), h('pre', { class: 'stderr' }, stderr)] : null);
  } catch (error) {
    clear(output, h('p', { class: 'error' }, problemText(error)));
  }
}

async function loadSummary(panel, run) {
  let summary;
  try {
    summary = await get(`/api/runs/${run.id}/summary`);
  } catch (error) {
    if (error.status === 409) {
      clear(panel, h('p', { class: 'muted' }, problemText(error)));
      return;
    }
    throw error;
  }
  const usage = summary.tokenUsage || {};
  clear(panel,
    h('h3', null, 'Changed files'),
    table(['Path', 'Change', '+', '−'], summary.changedFiles.map((file) => h('tr', null,
      h('td', null, h('code', null, file.path)), h('td', null, badge(file.changeType)),
      h('td', { class: 'diff-add' }, file.additions ?? ''), h('td', { class: 'diff-del' }, file.deletions ?? '')))),
    h('h3', null, 'Risks'),
    summary.risks.length
      ? h('ul', { class: 'risks' }, summary.risks.map((risk) => h('li', { class: `risk-${risk.level}` }, badge(risk.level), ` ${risk.reason}`,
        risk.paths.length ? h('span', { class: 'muted' }, ` — ${risk.paths.join(', ')}`) : '')))
      : h('p', { class: 'muted' }, 'None found.'),
    h('h3', null, 'Tests'),
    table(['Command', 'Exit', 'Took'], summary.tests.map((test) => h('tr', null,
      h('td', null, h('code', null, test.command)), h('td', null, test.exitCode ?? '—'), h('td', null, duration(test.durationMs)))),
    { empty: 'No test commands recognised.' }),
    h('h3', null, 'Docs'),
    summary.docs.length ? h('ul', null, summary.docs.map((doc) => h('li', null, h('code', null, doc.path), ` (${doc.changeType})`)))
      : h('p', { class: 'muted' }, 'No documentation changed.'),
    h('h3', null, 'Usage'),
    h('p', null, `${usage.inputTokens ?? 0} input tokens · ${usage.outputTokens ?? 0} output tokens`,
      usage.totalCostUsd !== null && usage.totalCostUsd !== undefined ? ` · $${usage.totalCostUsd.toFixed(4)}` : '',
      ` · ran ${duration(summary.durationMs)}`));
}

async function loadSnapshots(panel, run) {
  const snapshots = await all(`/api/runs/${run.id}/snapshots`);
  clear(panel, table(['Snapshot', 'Kind', 'Files', 'Taken'], snapshots.map((snapshot) => h('tr', null,
    h('td', null, `#${snapshot.id} `, snapshot.description || ''),
    h('td', null, badge(snapshot.kind)),
    h('td', null, snapshot.fileCount),
    h('td', null, time(snapshot.createdAt)))), { empty: 'No snapshots of this run yet.' }),
  h('p', null, link(`/console/projects/${run.projectId}/snapshots`, 'All snapshots of the project (compare, restore)')),
  run.status === 'completed' ? diffLink(run) : null);
}

function diffLink(run) {
  const slot = h('div');
  const button = h('button', { type: 'button', class: 'secondary' }, 'Whole diff of the run');
  button.addEventListener('click', () => busy(button, async () => {
    const diff = await get(`/api/runs/${run.id}/diff`);
    clear(slot, diffStats(diff.stats), renderDiff(diff.diff));
  }));
  return h('div', null, button, slot);
}

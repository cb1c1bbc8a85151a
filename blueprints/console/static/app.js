// The console's shell: routes (History API under /console/), the top bar, sign-out and elevation.
import { api, can, session } from './api.js';
import { busy, clear, h, link, problemText, toast } from './dom.js';

const BASE = '/console';

// [pattern, module, needs sign-in]; a page module exports `render(main, params, search)`, which may
// return a cleanup function (closing streams, stopping timers) run when the page is left.
const ROUTES = [
  [/^\/signin$/, () => import('./pages/signin.js'), false],
  [/^\/(projects)?$/, () => import('./pages/projects.js'), true],
  [/^\/projects\/(?<project>\d+)$/, () => import('./pages/project.js'), true],
  [/^\/projects\/(?<project>\d+)\/snapshots$/, () => import('./pages/snapshots.js'), true],
  [/^\/projects\/(?<project>\d+)\/docs$/, () => import('./pages/docs.js'), true],
  [/^\/runs\/(?<run>\d+)$/, () => import('./pages/run.js'), true],
  [/^\/admin$/, () => import('./pages/admin.js'), true],
];

let cleanup = null;
let renderSerial = 0;

export function navigate(path, { replace = false } = {}) {
  const url = path.startsWith(BASE) ? path : BASE + path;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

async function render() {
  const serial = ++renderSerial;
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup never blocks the next page */ }
    cleanup = null;
  }
  const path = location.pathname.slice(BASE.length).replace(/\/$/, '') || '/';
  const main = document.getElementById('main');
  const match = ROUTES.map(([pattern, load, auth]) => [path.match(pattern), load, auth]).find(([m]) => m);
  if (!match) {
    topbar();
    clear(main, h('h1', null, 'Not found'), h('p', null, 'No console page is here. ', link(`${BASE}/projects`, 'Projects')));
    return;
  }
  const [found, load, needsAuth] = match;
  if (needsAuth && !session.signedIn) {
    navigate(`/signin${query({ next: location.pathname + location.search })}`, { replace: true });
    return;
  }
  topbar();
  const page = await load();
  if (serial !== renderSerial) return; // another navigation won meanwhile
  clear(main);
  main.dataset.page = path.split('/')[1] || 'projects';
  try {
    const result = await page.render(main, found.groups || {}, new URLSearchParams(location.search));
    if (serial === renderSerial) cleanup = result || null;
    else if (typeof result === 'function') result();
  } catch (error) {
    if (serial === renderSerial && session.signedIn) clear(main, h('p', { class: 'error', role: 'alert' }, problemText(error)));
  }
}

function query(params) {
  return `?${new URLSearchParams(params)}`;
}

function topbar() {
  const bar = document.getElementById('topbar');
  const user = session.user;
  if (!session.signedIn || !user) {
    clear(bar, h('span', { class: 'brand' }, 'Runner'));
    return;
  }
  const elevated = session.elevated;
  clear(bar,
    link(`${BASE}/projects`, h('span', { class: 'brand' }, 'Runner')),
    h('nav', null,
      link(`${BASE}/projects`, 'Projects'),
      can('settings:read') || user.isAdmin ? link(`${BASE}/admin`, 'Admin') : null),
    h('span', { class: 'spacer' }),
    elevated
      ? h('span', { class: 'elevated', title: elevated.abilities.join(' ') },
        `Elevated until ${new Date(elevated.expiresAt).toLocaleTimeString()}`)
      : h('button', { type: 'button', class: 'link', onclick: () => elevateDialog() }, 'Elevate…'),
    h('span', { class: 'user', title: user.abilities.join(' ') }, user.email),
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'));
}

async function signOut() {
  const tokens = [session.state.elevated && session.state.elevated.token, session.state.token].filter(Boolean);
  for (const token of tokens) {
    // Revoke each token the tab holds; the session is cleared whatever the server says.
    await fetch('/api/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  session.clear();
  navigate('/signin');
}

// Asks for the password again and swaps in a short-lived token with git:push / settings:write.
export function elevateDialog(wanted = []) {
  const user = session.user;
  const choices = ['git:push', ...(user && user.isAdmin ? ['settings:write'] : [])];
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const boxes = choices.map((ability) => h('label', null,
    h('input', { type: 'checkbox', name: 'ability', value: ability, checked: wanted.length ? wanted.includes(ability) : true }),
    ` ${ability}`));
  const message = h('p', { class: 'error', role: 'alert' });
  const dialog = h('dialog', { class: 'dialog', 'aria-label': 'Elevate' });
  const submit = h('button', { type: 'submit' }, 'Elevate');
  const form = h('form', {
    onsubmit: async (event) => {
      event.preventDefault();
      const abilities = boxes.map((label) => label.firstChild).filter((box) => box.checked).map((box) => box.value);
      await busy(submit, async () => {
        try {
          const answer = await api('POST', '/api/auth/elevate', { password: password.value, abilities });
          session.elevate(answer.token, answer.abilities, answer.expiresAt);
          dialog.close();
          toast(`Elevated: ${abilities.join(', ')}`);
          render();
        } catch (error) {
          message.textContent = problemText(error);
        }
      });
    },
  },
  h('h2', null, 'Elevate this session'),
  h('p', { class: 'muted' }, 'A separate token valid for 15 minutes; your password is asked again.'),
  h('fieldset', null, boxes),
  h('label', null, 'Password ', password),
  message,
  h('div', { class: 'actions' }, submit, h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel')));
  dialog.append(form);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  password.focus();
}

document.addEventListener('click', (event) => {
  const anchor = event.target.closest('a[data-link]');
  if (!anchor || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(anchor.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', render);
window.addEventListener('runner:session', topbar);
window.addEventListener('runner:signed-out', (event) => {
  toast(event.detail, 'error');
  navigate(`/signin${query({ next: location.pathname + location.search })}`, { replace: true });
});

render();

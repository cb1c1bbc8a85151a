// Administration: server params (secrets write-only) and agent providers. Reading needs
// settings:read; changing needs settings:write, which only an elevated admin token holds.
import { all, api, can, get, session } from '../api.js';
import { badge, busy, clear, h, toast } from '../dom.js';
import { elevateDialog } from '../app.js';

export async function render(main) {
  main.append(h('h1', null, 'Administration'));
  if (!can('settings:read')) {
    main.append(h('p', { class: 'error' }, 'This token lacks settings:read.'));
    return;
  }
  const writable = can('settings:write');
  if (!writable) {
    main.append(h('p', { class: 'notice' },
      'Read only. Changing settings needs settings:write: an administrator elevates with the password again. ',
      session.user && session.user.isAdmin
        ? h('button', { type: 'button', dataset: { action: 'elevate' }, onclick: () => elevateDialog(['settings:write']) }, 'Elevate…')
        : null));
  }
  const paramsSection = h('section', { class: 'server-params' });
  const providersSection = h('section', { class: 'providers' });
  main.append(h('h2', null, 'Agent providers'), providersSection, h('h2', null, 'Server params'), paramsSection);

  async function drawProviders() {
    const providers = await all('/api/settings/providers');
    clear(providersSection, providers.map((provider) => providerCard(provider, writable, drawProviders)));
  }
  async function drawParams() {
    const { data } = await get('/api/settings/server-params');
    clear(paramsSection, h('table', { class: 'grid params' },
      h('thead', null, h('tr', null, ['Param', 'Value', 'Source', ''].map((name) => h('th', null, name)))),
      h('tbody', null, data.map((param) => paramRow(param, writable, drawParams)))));
  }
  await Promise.all([drawProviders(), drawParams()]);
}

function providerCard(provider, writable, redraw) {
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: provider.enabled, disabled: !writable, dataset: { provider: provider.key } });
  // One argument per line: an argv list, never a shell string.
  const command = h('textarea', { name: 'command', rows: Math.max(2, provider.command.length), disabled: !writable, value: provider.command.join('\n') });
  const models = h('input', { name: 'models', disabled: !writable, value: provider.models.join(', ') });
  const save = h('button', { type: 'submit', disabled: !writable }, 'Save');
  const submit = (changes) => busy(save, async () => {
    const answer = await api('PUT', `/api/settings/providers/${encodeURIComponent(provider.key)}`, changes);
    toast(`${answer.name}: ${answer.enabled ? 'enabled' : 'disabled'}`);
    await redraw();
  });
  enabled.addEventListener('change', () => submit({ enabled: enabled.checked }).then((result) => {
    if (result === undefined) enabled.checked = provider.enabled; // refused: show what holds
  }));
  return h('form', {
    class: 'card provider',
    dataset: { provider: provider.key },
    onsubmit: (event) => {
      event.preventDefault();
      submit({
        command: command.value.split('\n').map((arg) => arg.trim()).filter(Boolean),
        models: models.value.split(',').map((model) => model.trim()).filter(Boolean),
      });
    },
  },
  h('h3', null, provider.name, ' ', h('code', null, provider.key), ' ',
    provider.available ? badge('available') : badge('not-installed')),
  h('label', { class: 'check' }, enabled, ' Enabled'),
  h('label', null, 'Command (one argument per line; {prompt} and {model} are filled in)', command),
  h('label', null, 'Models (comma-separated)', models),
  save);
}

function paramRow(param, writable, redraw) {
  let input;
  if (param.type === 'boolean') {
    input = h('input', { type: 'checkbox', checked: param.value === true, disabled: !writable });
  } else if (param.secret) {
    // Write-only: the value is never shown or sent back; an empty box leaves it as it is.
    input = h('input', {
      type: 'password', autocomplete: 'new-password', disabled: !writable, placeholder: param.isSet ? '•••• set — type to replace' : 'not set',
    });
  } else {
    input = h('input', {
      type: param.type === 'integer' ? 'number' : 'text', disabled: !writable, value: param.value === null ? '' : String(param.value),
    });
  }
  input.name = param.key;
  const save = h('button', { type: 'button', disabled: !writable, dataset: { param: param.key } }, 'Save');
  const reset = h('button', { type: 'button', class: 'secondary', disabled: !writable || param.source !== 'stored' }, 'Reset');
  const write = (value, button) => busy(button, async () => {
    await api('PUT', '/api/settings/server-params', { [param.key]: value });
    toast(`${param.key} ${value === null ? 'reset' : 'saved'}`);
    await redraw();
  });
  save.addEventListener('click', () => {
    let value;
    if (param.type === 'boolean') value = input.checked;
    else if (param.type === 'integer') value = input.value === '' ? null : Number(input.value);
    else value = input.value === '' ? (param.secret ? undefined : null) : input.value;
    if (value === undefined) {
      toast(`${param.key}: type a new value first`, 'error');
      return;
    }
    write(value, save);
  });
  reset.addEventListener('click', () => write(null, reset));
  return h('tr', { dataset: { param: param.key } },
    h('td', null, h('code', null, param.key), param.secret ? h('span', { class: 'muted' }, ' secret') : '',
      h('div', { class: 'muted small' }, param.description)),
    h('td', null, input),
    h('td', null, param.source),
    h('td', { class: 'row-actions' }, save, reset));
}

// Sign in: email and password for a token (POST /api/auth/token), then who we are (GET /api/auth/me).
import { api, session } from '../api.js';
import { h, problemText } from '../dom.js';
import { navigate } from '../app.js';

export function render(main, params, search) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const message = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', {
    class: 'signin card',
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      message.textContent = '';
      try {
        const { token } = await api('POST', '/api/auth/token', {
          email: email.value, password: password.value, deviceName: 'Web console',
        });
        session.signIn(token, null);
        session.state.user = await api('GET', '/api/auth/me');
        session.save();
        const next = search.get('next');
        navigate(next && next.startsWith('/console/') && !next.startsWith('/console/signin') ? next : '/projects', { replace: true });
      } catch (error) {
        session.clear();
        message.textContent = problemText(error);
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('h1', null, 'Sign in to Runner'),
  h('label', null, 'Email', email),
  h('label', null, 'Password', password),
  message,
  submit);
  main.append(form);
  email.focus();
}

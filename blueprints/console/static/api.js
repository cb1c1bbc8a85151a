// The console's one way to Runner: the public API under /api/, with the session's bearer token.
//
// The token lives in sessionStorage only (this tab, gone when it closes; never a cookie, so no
// other origin's request carries it). An elevated token (POST /api/auth/elevate: git:push,
// settings:write) is kept beside it and used until it expires.

const STORAGE_KEY = 'runner.console.session';

export class ApiProblem extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  get slug() {
    return (this.problem.type || '').split('/').pop();
  }
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY)) || {};
  } catch {
    return {};
  }
}

export const session = {
  state: load(),

  get signedIn() {
    return Boolean(this.state.token);
  },
  get user() {
    return this.state.user || null;
  },
  get elevated() {
    const elevated = this.state.elevated;
    if (elevated && elevated.expiresAt && Date.parse(elevated.expiresAt) <= Date.now()) {
      delete this.state.elevated;
      this.save();
      return null;
    }
    return elevated || null;
  },
  // The abilities of the token requests are sent with.
  get abilities() {
    const elevated = this.elevated;
    return elevated ? elevated.abilities : (this.state.user && this.state.user.abilities) || [];
  },
  get token() {
    const elevated = this.elevated;
    return elevated ? elevated.token : this.state.token;
  },
  save() {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.state));
    window.dispatchEvent(new Event('runner:session'));
  },
  signIn(token, user) {
    this.state = { token, user };
    this.save();
  },
  elevate(token, abilities, expiresAt) {
    this.state.elevated = { token, abilities, expiresAt };
    this.save();
  },
  clear() {
    this.state = {};
    sessionStorage.removeItem(STORAGE_KEY);
    window.dispatchEvent(new Event('runner:session'));
  },
};

// Mirrors runner.policies.matches: `*`, `group:*` and exact abilities.
export function can(ability, abilities = session.abilities) {
  return abilities.some((granted) => granted === '*' || granted === ability
    || (granted.endsWith(':*') && ability.startsWith(granted.slice(0, -1))));
}

// Idempotency-Key for every POST, so a retried request never acts twice. Not crypto.randomUUID:
// that exists only in secure contexts, and a LAN server may be plain http.
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// `api(method, path, body?)` -> the JSON answer (null for 204), or throws ApiProblem.
export async function api(method, path, body, { retries = 2 } = {}) {
  const headers = { Accept: 'application/json' };
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method === 'POST') headers['Idempotency-Key'] = idempotencyKey();
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (response.status === 204) return null;
  const isJson = /json/.test(response.headers.get('Content-Type') || '');
  const data = isJson ? await response.json() : await response.text();
  if (response.ok) return data;

  if (response.status === 401 && token) {
    if (session.state.elevated && token === session.state.elevated.token) {
      // The elevated token expired or was revoked: fall back to the base one.
      delete session.state.elevated;
      session.save();
      return api(method, path, body, { retries });
    }
    if (path !== '/api/auth/logout') {
      session.clear();
      window.dispatchEvent(new CustomEvent('runner:signed-out', { detail: 'Your session ended; sign in again.' }));
    }
  }
  // Reads wait out a rate limit as the server asks; actions are left to the person to repeat.
  if (response.status === 429 && method === 'GET' && retries > 0) {
    const wait = Number(response.headers.get('Retry-After')) || (isJson && data.retryAfter) || 2;
    await sleep(Math.min(wait, 30) * 1000);
    return api(method, path, body, { retries: retries - 1 });
  }
  throw new ApiProblem(response.status, isJson ? data : { title: `HTTP ${response.status}`, detail: String(data).slice(0, 200) });
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

// Every item of a cursor-paginated list, up to `max`.
export async function all(path, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.data);
    cursor = page.meta && page.meta.nextCursor;
  } while (cursor && items.length < max);
  return items;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// A run's events, live, in the browser: EventSource on GET /api/runs/{run}/events/stream.
//
// EventSource cannot send an Authorization header, so each connection carries a short-lived
// stream token (POST /api/auth/stream-token) in its URL, the only token ever put in a URL. The
// server checks it when a connection opens, not after, so an open stream outlives it.
//
// Resuming without loss or duplicates, in two ways:
// - a dropped connection is first retried by the browser itself, with the same URL and a
//   Last-Event-ID header holding the last id it delivered: while the token is still fresh, the
//   server resumes right after that id;
// - once the token has expired (or the server refused for any reason: 401, 429 at the stream
//   limit), EventSource gives up (readyState CLOSED). We then fetch a fresh token and open a new
//   EventSource with `lastEventId=` set to the last id shown, backing off between attempts.
// Ids only grow, so anything at or below the last id shown is counted as a duplicate and dropped.

import { post } from './api.js';

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class RunStream {
  constructor(runId, { onEvents, onState, onEnd }) {
    this.runId = runId;
    this.onEvents = onEvents;
    this.onState = onState || (() => {});
    this.onEnd = onEnd || (() => {});
    this.lastId = 0;
    this.source = null;
    this.state = 'idle';
    this.stats = { opens: 0, tokenFetches: 0, errors: 0, duplicates: 0, received: 0 };
    this.pending = [];
    this.flushQueued = false;
    this.failures = 0;
    this.retryTimer = null;
    this.closed = false;
  }

  // Opens (or reopens) the stream after `lastId`; a no-op while one is open.
  async open(lastId = this.lastId) {
    if (this.closed || (this.source && this.source.readyState !== EventSource.CLOSED)) return;
    this.lastId = Math.max(this.lastId, lastId);
    this.setState('connecting');
    let token;
    try {
      ({ streamToken: token } = await post('/api/auth/stream-token'));
      this.stats.tokenFetches += 1;
    } catch (error) {
      if (error.status === 401) return this.close(); // signed out: the shell takes over
      return this.retryLater();
    }
    if (this.closed) return undefined;
    const params = new URLSearchParams({ streamToken: token });
    if (this.lastId) params.set('lastEventId', String(this.lastId));
    const source = new EventSource(`/api/runs/${this.runId}/events/stream?${params}`);
    this.source = source;
    source.addEventListener('open', () => {
      this.stats.opens += 1;
      this.failures = 0;
      this.setState('live');
    });
    source.addEventListener('agent_event', (message) => this.receive(message));
    source.addEventListener('end', (message) => {
      source.close();
      this.flush();
      this.setState('ended');
      this.onEnd(JSON.parse(message.data));
    });
    source.addEventListener('error', () => {
      if (source !== this.source || this.state === 'ended') return;
      this.stats.errors += 1;
      if (source.readyState === EventSource.CONNECTING) {
        this.setState('reconnecting'); // the browser retries by itself, sending Last-Event-ID
      } else {
        this.retryLater();
      }
    });
    return undefined;
  }

  receive(message) {
    const id = Number(message.lastEventId);
    this.stats.received += 1;
    const last = this.pending.length ? this.pending[this.pending.length - 1].id : this.lastId;
    if (!(id > last)) {
      this.stats.duplicates += 1;
      return;
    }
    this.pending.push(JSON.parse(message.data));
    // Frames arrive in bursts (a replay of thousands): hand them on once per animation frame.
    if (!this.flushQueued) {
      this.flushQueued = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.flushQueued = false;
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    this.lastId = batch[batch.length - 1].id;
    this.onEvents(batch);
  }

  retryLater() {
    if (this.closed) return;
    if (this.source) this.source.close();
    this.source = null;
    this.setState('reconnecting');
    const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
    this.failures += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  // After an action on an ended run (approve, commit, retry …): read what it added, and follow
  // the run live again if it is running once more.
  catchUp() {
    if (this.state === 'ended' || this.state === 'idle') {
      this.source = null;
      this.open();
    }
  }

  setState(state) {
    this.state = state;
    this.onState(state, this.stats);
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
    this.setState('closed');
  }
}

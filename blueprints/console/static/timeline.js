// The run's event timeline: a virtualized list. Rows have one fixed height and only those in view
// (plus a few either side) exist in the DOM, reused as the list scrolls, so 10,000 events cost
// what 40 do. While scrolled to the bottom it follows new events; scrolled up, it stays put.
import { h } from './dom.js';

const ROW_HEIGHT = 28;
const OVERSCAN = 10;

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString();
}

export class Timeline {
  constructor({ onSelect } = {}) {
    this.events = [];
    this.onSelect = onSelect || (() => {});
    this.selectedId = null;
    this.follow = true;
    this.rows = [];
    this.scheduled = false;
    this.spacer = h('div', { class: 'timeline-spacer' });
    this.viewport = h('div', { class: 'timeline', tabindex: '0', role: 'list', 'aria-label': 'Run events' }, this.spacer);
    this.viewport.addEventListener('scroll', () => {
      this.follow = this.viewport.scrollTop + this.viewport.clientHeight >= this.spacer.offsetHeight - ROW_HEIGHT;
      this.schedule();
    }, { passive: true });
    this.viewport.addEventListener('click', (event) => {
      const row = event.target.closest('.event');
      if (!row) return;
      const found = this.find(Number(row.dataset.eventId));
      if (found) this.select(found);
    });
    new ResizeObserver(() => this.schedule()).observe(this.viewport);
  }

  get element() {
    return this.viewport;
  }

  add(batch) {
    this.events.push(...batch);
    this.viewport.dataset.count = String(this.events.length);
    this.viewport.dataset.lastEventId = String(this.events.length ? this.events[this.events.length - 1].id : '');
    this.schedule();
  }

  find(id) {
    // Ids only grow: binary search.
    let low = 0;
    let high = this.events.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const value = this.events[mid].id;
      if (value === id) return this.events[mid];
      if (value < id) low = mid + 1;
      else high = mid - 1;
    }
    return null;
  }

  select(event) {
    this.selectedId = event.id;
    this.onSelect(event);
    this.schedule();
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.draw();
    });
  }

  draw() {
    const total = this.events.length;
    this.spacer.style.height = `${total * ROW_HEIGHT}px`;
    if (this.follow) this.viewport.scrollTop = this.spacer.offsetHeight;
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const needed = last - first;
    while (this.rows.length < needed) {
      const row = this.makeRow();
      this.rows.push(row);
      this.spacer.append(row.el);
    }
    this.rows.forEach((row, index) => {
      const event = this.events[first + index];
      if (index >= needed || !event) {
        row.el.hidden = true;
        return;
      }
      row.el.hidden = false;
      row.el.style.transform = `translateY(${(first + index) * ROW_HEIGHT}px)`;
      if (row.id !== event.id) this.fill(row, event);
      row.el.classList.toggle('selected', event.id === this.selectedId);
    });
  }

  makeRow() {
    const cells = {
      id: h('span', { class: 'event-id' }),
      time: h('span', { class: 'event-time' }),
      type: h('span', { class: 'event-type' }),
      path: h('span', { class: 'event-path' }),
      message: h('span', { class: 'event-message' }),
    };
    const el = h('div', { class: 'event', role: 'listitem' }, cells.id, cells.time, cells.type, cells.path, cells.message);
    return { el, cells, id: null };
  }

  fill(row, event) {
    row.id = event.id;
    row.el.dataset.eventId = String(event.id);
    row.el.className = `event severity-${event.severity} type-${event.eventType}`;
    row.cells.id.textContent = String(event.id);
    row.cells.time.textContent = clock(event.createdAt);
    row.cells.type.textContent = event.eventType;
    row.cells.path.textContent = event.path || '';
    row.cells.message.textContent = (event.message || '').split('\n', 1)[0];
    row.el.title = event.message || '';
  }

  scrollToEnd() {
    this.follow = true;
    this.schedule();
  }
}

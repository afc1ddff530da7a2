// Dashboard: listens to /herald/stats (one JSON snapshot per second) and draws the counters
// and a five-minute chart as hand-written SVG.

const WINDOW = 300; // samples kept: five minutes at one per second
const SVG_NS = 'http://www.w3.org/2000/svg';
const samples = [];
const number = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function setStatus(state, text) {
  const pill = document.getElementById('status');
  pill.dataset.state = state;
  pill.textContent = text;
}

function svg(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

// A maximum rounded up to 1, 2 or 5 times a power of ten, so the grid lines are round numbers.
function niceMax(value) {
  if (value <= 4) return 4;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function draw() {
  const chart = document.getElementById('chart');
  // Draw in CSS pixels so text and strokes keep their size at any width.
  const width = Math.max(280, Math.round(chart.getBoundingClientRect().width) || 600);
  const height = 220, left = 44, top = 10, bottom = 22;
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const plotWidth = width - left - 8, plotHeight = height - top - bottom;
  const max = niceMax(Math.max(1, ...samples.map((s) => Math.max(s.connections, s.delivery_rate))));
  const x = (i) => left + (plotWidth * (WINDOW - samples.length + i)) / (WINDOW - 1);
  const y = (v) => top + plotHeight - (plotHeight * v) / max;
  const parts = [];
  for (let k = 0; k <= 4; k++) {
    const value = (max * k) / 4;
    parts.push(svg('line', { class: 'grid-line', x1: left, x2: width - 8, y1: y(value), y2: y(value) }));
    const label = svg('text', { class: 'axis-label', x: left - 6, y: y(value) + 4, 'text-anchor': 'end' });
    label.textContent = number.format(value);
    parts.push(label);
  }
  for (const [minutes, anchor] of [[5, 'start'], [4, 'middle'], [3, 'middle'], [2, 'middle'], [1, 'middle'], [0, 'end']]) {
    const label = svg('text', { class: 'axis-label', x: left + plotWidth * (1 - minutes / 5), y: height - 6, 'text-anchor': anchor });
    label.textContent = minutes === 0 ? 'now' : `-${minutes}m`;
    parts.push(label);
  }
  if (samples.length > 1) {
    const line = (key) => samples.map((s, i) => `${x(i).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ');
    const connections = line('connections');
    const base = y(0).toFixed(1);
    parts.push(svg('polygon', { class: 'area-a', points: `${x(0).toFixed(1)},${base} ${connections} ${x(samples.length - 1).toFixed(1)},${base}` }));
    parts.push(svg('polyline', { class: 'series-a', points: connections, 'vector-effect': 'non-scaling-stroke' }));
    parts.push(svg('polyline', { class: 'series-b', points: line('delivery_rate'), 'vector-effect': 'non-scaling-stroke' }));
  }
  chart.replaceChildren(...parts);
}

function show(stats) {
  setText('connections', number.format(stats.connections));
  setText('connections-total', `${number.format(stats.connections_total)} since start`);
  setText('topics', number.format(stats.topics));
  setText('publish-rate', number.format(stats.publish_rate));
  setText('published', `${number.format(stats.published)} published`);
  setText('delivery-rate', number.format(stats.delivery_rate));
  setText('delivered', `${number.format(stats.delivered)} delivered`);
  setText('store', stats.store);
  const history = stats.history;
  if (history) {
    setText('retained', `${number.format(history.retained)} updates`);
    setText('seq-range', history.oldest_seq == null ? 'empty' : `${history.oldest_seq} … ${history.last_seq}`);
    setText('last-id', history.last_id ?? '–');
  } else {
    setText('retained', 'store unavailable');
  }
  setText('replays', number.format(stats.replays));
  setText('overflows', number.format(stats.overflows));
  setText('store-errors', number.format(stats.store_errors));
  setText('sampled', new Date(stats.time).toLocaleTimeString());
}

const source = new EventSource('/herald/stats');
source.onopen = () => setStatus('live', 'live');
source.onerror = () => {
  setStatus(source.readyState === EventSource.CLOSED ? 'closed' : 'connecting',
    source.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting');
};
source.onmessage = (event) => {
  const stats = JSON.parse(event.data);
  samples.push(stats);
  if (samples.length > WINDOW) samples.shift();
  show(stats);
  draw();
window.addEventListener('resize', draw);
};
draw();
window.addEventListener('resize', draw);

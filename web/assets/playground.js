// Playground: one subscription seen two ways (EventSource parsed, fetch() raw), and a publish
// form with every field of the Mercure publish request.

const HUB_PATH = '/.well-known/mercure';
const $ = (id) => document.getElementById(id);

let info = { cookie_name: '__Secure-mercure_access_token', anonymous: true };
let source = null; // the EventSource of the parsed view
let rawAbort = null; // aborts the fetch() of the raw view
const listening = new Set(); // event types the EventSource has listeners for

try {
  const response = await fetch('/herald/info', { cache: 'no-store' });
  if (response.ok) info = await response.json();
} catch {
  // Pages may be served by a hub without /herald/info; the defaults above still work.
}

// ---- selectors ---------------------------------------------------------------------------

function addSelector(kind = 'match', value = '') {
  const row = document.createElement('div');
  row.className = 'selector-row';
  const select = document.createElement('select');
  select.setAttribute('aria-label', 'Selector kind');
  for (const [optionValue, text] of [['match', 'match (exact or *)'], ['match_urlpattern', 'match_urlpattern']]) {
    const option = new Option(text, optionValue, false, optionValue === kind);
    select.add(option);
  }
  const input = document.createElement('input');
  input.type = 'text';
  input.value = value;
  input.placeholder = 'https://example.com/books/:id';
  input.setAttribute('aria-label', 'Selector');
  input.className = 'selector-value';
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'icon-button';
  remove.textContent = '✕';
  remove.setAttribute('aria-label', 'Remove selector');
  remove.addEventListener('click', () => {
    if ($('selectors').children.length > 1) row.remove();
  });
  row.append(select, input, remove);
  $('selectors').append(row);
  return row;
}

function subscribeUrl() {
  const url = new URL(HUB_PATH, location.origin);
  for (const row of $('selectors').children) {
    const kind = row.querySelector('select').value;
    const value = row.querySelector('input').value.trim();
    if (value) url.searchParams.append(kind, value);
  }
  const lastEventId = $('sub-last-event-id').value.trim();
  if (lastEventId) url.searchParams.set('last_event_id', lastEventId);
  return url;
}

// ---- logs --------------------------------------------------------------------------------

function time() {
  return new Date().toLocaleTimeString([], { hour12: false });
}

function bump(id) {
  $(id).textContent = String(Number($(id).textContent) + 1);
}

function logEvent(type, id, data, system = false) {
  const item = document.createElement('li');
  item.className = 'event';
  item.dataset.type = type;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const tag = document.createElement('span');
  tag.className = system ? 'tag system' : 'tag';
  tag.textContent = type;
  const when = document.createElement('span');
  when.textContent = time();
  meta.append(tag, when);
  if (id) {
    const idText = document.createElement('code');
    idText.textContent = `id ${id}`;
    meta.append(idText);
  }
  const body = document.createElement('div');
  body.className = 'data';
  body.textContent = data;
  item.append(meta, body);
  $('events').prepend(item);
  if (!system) bump('events-count');
}

// Shows a frame exactly: every line end is kept and marked, so CR, LF and blank lines show.
function logFrame(text, label) {
  const item = document.createElement('li');
  item.className = 'raw-frame';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const tag = document.createElement('span');
  tag.className = 'tag system';
  tag.textContent = label;
  const when = document.createElement('span');
  when.textContent = `${time()} · ${new TextEncoder().encode(text).length} bytes`;
  meta.append(tag, when);
  const pre = document.createElement('pre');
  pre.className = 'frame';
  for (const part of text.split(/(\r\n|\r|\n)/)) {
    if (part === '\n' || part === '\r' || part === '\r\n') {
      const eol = document.createElement('span');
      eol.className = 'eol';
      eol.textContent = part === '\n' ? '\\n' : part === '\r' ? '\\r' : '\\r\\n';
      pre.append(eol, '\n');
    } else if (part) {
      pre.append(part);
    }
  }
  item.append(meta, pre);
  $('raw').prepend(item);
  bump('raw-count');
}

function frameLabel(frame) {
  if (/^(?:id|data|event):/m.test(frame)) return 'event';
  if (/^retry:/m.test(frame)) return 'retry';
  if (/^:/.test(frame)) return 'comment';
  return 'frame';
}

// ---- subscribing -------------------------------------------------------------------------

function setSubStatus(state, text) {
  $('sub-status').dataset.state = state;
  $('sub-status').textContent = text;
}

function listenFor(type) {
  if (!source || !type || type === 'message' || listening.has(type)) return;
  listening.add(type);
  source.addEventListener(type, (event) => logEvent(type, event.lastEventId, event.data));
}

function setTokenCookie(token) {
  const secure = info.cookie_name.startsWith('__Secure-') || location.protocol === 'https:';
  const base = `${info.cookie_name}=${token ? encodeURIComponent(token) : ''}; path=${HUB_PATH}; SameSite=Strict${secure ? '; Secure' : ''}`;
  document.cookie = token ? base : `${base}; max-age=0`;
}

async function readRaw(url, token, signal) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, { headers, signal, cache: 'no-store' });
  } catch (error) {
    if (!signal.aborted) logFrame(`fetch failed: ${error.message}`, 'error');
    return;
  }
  const head = [`HTTP ${response.status} ${response.statusText}`];
  for (const name of ['content-type', 'cache-control', 'mercure-last-event-id']) {
    const value = response.headers.get(name);
    if (value !== null) head.push(`${name}: ${value}`);
  }
  logFrame(head.join('\n'), 'response');
  if (response.status === 204) {
    setSubStatus('closed', 'ended (204)');
    return;
  }
  if (!response.ok || !response.body) {
    logFrame(await response.text(), 'body');
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // A frame ends with a blank line; CR, LF and CRLF are all line ends on the wire.
      let match;
      while ((match = /(\r\n|\r(?!$)|\n)(\r\n|\r(?!$)|\n)/.exec(buffer)) !== null) {
        const end = match.index + match[0].length;
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end);
        logFrame(frame, frameLabel(frame));
      }
    }
    if (buffer) logFrame(buffer, 'unterminated');
    logFrame('(the hub closed the stream)', 'end');
  } catch (error) {
    if (!signal.aborted) logFrame(`stream failed: ${error.message}`, 'error');
  }
}

function unsubscribe() {
  if (source) source.close();
  source = null;
  listening.clear();
  if (rawAbort) rawAbort.abort();
  rawAbort = null;
  $('unsubscribe').disabled = true;
  $('subscribe').textContent = 'Subscribe';
  setSubStatus('idle', 'not subscribed');
}

function subscribe(event) {
  event.preventDefault();
  unsubscribe();
  const url = subscribeUrl();
  const hasSelector = [...url.searchParams.keys()].some((key) => key.startsWith('match'));
  if (!hasSelector) {
    $('sub-url').textContent = 'Give at least one selector (use * for everything).';
    return;
  }
  const token = $('sub-token').value.trim();
  setTokenCookie(token);
  $('sub-url').textContent = `GET ${url.pathname}${url.search}`;
  setSubStatus('connecting', 'connecting');
  source = new EventSource(url, { withCredentials: Boolean(token) });
  source.onopen = () => setSubStatus('live', 'live');
  source.onerror = () => {
    if (!source) return;
    if (source.readyState === EventSource.CLOSED) {
      setSubStatus('closed', 'closed (no reconnect)');
      logEvent('closed', '', 'EventSource stopped: the hub answered 204 or refused the request.', true);
    } else {
      setSubStatus('connecting', 'reconnecting');
    }
  };
  source.onmessage = (message) => logEvent('message', message.lastEventId, message.data);
  source.addEventListener('herald-history-gap', (gap) => logEvent('herald-history-gap', '', gap.data, true));
  listening.add('herald-history-gap');
  for (const type of $('sub-types').value.split(',')) listenFor(type.trim());
  rawAbort = new AbortController();
  readRaw(url, token, rawAbort.signal);
  $('unsubscribe').disabled = false;
  $('subscribe').textContent = 'Resubscribe';
}

// ---- publishing --------------------------------------------------------------------------

function topics() {
  return $('pub-topics').value.split('\n').map((line) => line.trim()).filter(Boolean);
}

function showResult(ok, text) {
  $('pub-result').dataset.ok = String(ok);
  $('pub-result').textContent = text;
}

async function post(path, body) {
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  const token = $('pub-token').value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch(path, { method: 'POST', headers, body });
    const text = (await response.text()).trim();
    showResult(response.ok, `${response.status} · ${text}`);
    return response.ok;
  } catch (error) {
    showResult(false, `request failed: ${error.message}`);
    return false;
  }
}

async function publish(event) {
  event.preventDefault();
  const body = new URLSearchParams();
  for (const topic of topics()) body.append('topic', topic);
  body.set('data', $('pub-data').value);
  const fields = { id: $('pub-id').value.trim(), type: $('pub-type').value.trim(), retry: $('pub-retry').value.trim() };
  for (const [name, value] of Object.entries(fields)) if (value) body.set(name, value);
  if ($('pub-private').checked) body.set('private', 'on');
  // An event type published here should show in the parsed view without extra steps.
  listenFor(fields.type);
  await post(HUB_PATH, body);
}

async function end() {
  const body = new URLSearchParams();
  for (const topic of topics()) body.append('topic', topic);
  await post(`${HUB_PATH}/end`, body);
}

// ---- tabs and wiring ---------------------------------------------------------------------

function selectTab(name) {
  for (const [tab, panel] of [['tab-events', 'events'], ['tab-raw', 'raw']]) {
    const selected = panel === name;
    $(tab).setAttribute('aria-selected', String(selected));
    $(panel).hidden = !selected;
  }
}

addSelector('match', 'https://example.com/books/1');
addSelector('match_urlpattern', 'https://example.com/authors/:id');
$('add-selector').addEventListener('click', () => addSelector('match', '').querySelector('input').focus());
$('subscribe-form').addEventListener('submit', subscribe);
$('unsubscribe').addEventListener('click', unsubscribe);
$('publish-form').addEventListener('submit', publish);
$('end').addEventListener('click', end);
$('tab-events').addEventListener('click', () => selectTab('events'));
$('tab-raw').addEventListener('click', () => selectTab('raw'));
$('clear').addEventListener('click', () => {
  $('events').replaceChildren();
  $('raw').replaceChildren();
  $('events-count').textContent = '0';
  $('raw-count').textContent = '0';
});
if (!info.anonymous) {
  $('sub-token-help').textContent = 'This hub requires a token to subscribe.';
}
document.body.dataset.ready = 'true';

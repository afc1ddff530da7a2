// Chat example page: one EventSource per room. It asks for the room's retained history
// first (`last_event_id=earliest`); on reconnection the browser sends Last-Event-ID itself.

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let source = null;

$('name').value = params.get('name') ?? `guest-${Math.floor(Math.random() * 1000)}`;
$('room').value = params.get('room') ?? 'general';

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function show(message, id) {
  const item = document.createElement('li');
  item.className = 'message';
  item.dataset.id = id;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const who = document.createElement('span');
  who.className = 'tag';
  who.textContent = message.name;
  const when = document.createElement('span');
  when.textContent = new Date(message.time).toLocaleTimeString([], { hour12: false });
  meta.append(who, when);
  const text = document.createElement('div');
  text.className = 'data';
  text.textContent = message.text;
  item.append(meta, text);
  $('messages').append(item);
  $('messages').scrollTop = $('messages').scrollHeight;
}

function join(room) {
  if (source) source.close();
  $('messages').replaceChildren();
  $('room-title').textContent = `#${room}`;
  const url = new URL('/.well-known/mercure', location.origin);
  url.searchParams.append('match', `https://example.com/rooms/${room}`);
  url.searchParams.set('last_event_id', 'earliest');
  setStatus('connecting', 'connecting');
  const current = new EventSource(url);
  source = current;
  current.onopen = () => setStatus('live', 'live');
  current.onerror = () => setStatus('connecting', 'reconnecting');
  current.onmessage = (event) => {
    // A reconnection replays from Last-Event-ID; ids already shown are not shown twice.
    if (document.querySelector(`#messages li[data-id="${CSS.escape(event.lastEventId)}"]`)) return;
    show(JSON.parse(event.data), event.lastEventId);
  };
}

$('room').addEventListener('change', () => join($('room').value));
$('compose').addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = new URLSearchParams({ name: $('name').value, text: $('text').value });
  const response = await fetch(`/rooms/${encodeURIComponent($('room').value)}/messages`, { method: 'POST', body });
  if (response.ok) $('text').value = '';
});
join($('room').value);
document.body.dataset.ready = 'true';

// Client-stream example page: one EventSource on this client's topic; the buttons ask the
// app's backend to start, send to, and end the stream.

const $ = (id) => document.getElementById(id);
const STATES = ['CONNECTING', 'OPEN', 'CLOSED'];
const client = crypto.randomUUID();
$('client-id').textContent = client;

function log(kind, text) {
  const item = document.createElement('li');
  item.dataset.kind = kind;
  item.textContent = text;
  $('log').append(item);
}

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

const url = new URL('/.well-known/mercure', location.origin);
url.searchParams.append('match', `https://example.com/clients/${client}`);
const source = new EventSource(url);
const showState = () => { $('ready-state').textContent = STATES[source.readyState]; };
source.onopen = () => { setStatus('live', 'open'); showState(); };
source.onmessage = (event) => log('message', event.data);
source.addEventListener('start', (event) => log('start', `started: ${event.data}`));
source.addEventListener('end', (event) => {
  log('end', `ended: ${event.data}`);
  setStatus('connecting', 'ended, reconnecting once');
});
source.onerror = () => {
  showState();
  if (source.readyState === EventSource.CLOSED) {
    setStatus('closed', 'closed (204)');
    log('closed', 'the hub answered 204: EventSource is CLOSED and will not reconnect');
    for (const id of ['start', 'send', 'end']) $(id).disabled = true;
  } else {
    setStatus('connecting', 'reconnecting');
  }
};
showState();

async function call(action, query = '') {
  const response = await fetch(`/clients/${client}/${action}${query}`, { method: 'POST' });
  if (!response.ok) log('error', `${action}: ${response.status} ${await response.text()}`);
}

$('start').addEventListener('click', () => call('start'));
$('send').addEventListener('click', () => call('send', `?text=${encodeURIComponent($('text').value)}`));
$('end').addEventListener('click', () => call('end'));
document.body.dataset.ready = 'true';

// Ticker example page: a live value every second, and a finite stream that ends with `bye`.

const $ = (id) => document.getElementById(id);
const hub = new URL('/.well-known/mercure', location.origin);

function setStatus(id, state, text) {
  $(id).dataset.state = state;
  $(id).textContent = text;
}

function log(text) {
  const item = document.createElement('li');
  item.textContent = text;
  $('finite-log').append(item);
}

const tickerUrl = new URL(hub);
tickerUrl.searchParams.append('match', 'https://example.com/ticker');
const ticker = new EventSource(tickerUrl);
let ticks = 0;
ticker.onopen = () => setStatus('tick-status', 'live', 'live');
ticker.onerror = () => setStatus('tick-status', 'connecting', 'reconnecting');
ticker.onmessage = (event) => {
  ticks += 1;
  $('tick').textContent = new Date(Number(event.data)).toLocaleTimeString([], { hour12: false });
  $('tick-count').textContent = `${ticks} tick${ticks === 1 ? '' : 's'}`;
};

$('start-finite').addEventListener('click', async () => {
  $('start-finite').disabled = true;
  $('finite-log').replaceChildren();
  const session = crypto.randomUUID();
  const url = new URL(hub);
  url.searchParams.append('match', `https://example.com/finite/${session}`);
  const source = new EventSource(url);
  source.onmessage = (event) => log(`value ${event.data}`);
  source.addEventListener('bye', (event) => {
    log(`bye: ${event.data}`);
    setStatus('finite-status', 'connecting', 'ended, reconnecting once');
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      setStatus('finite-status', 'closed', 'closed (204)');
      log('the hub answered 204: EventSource is CLOSED');
      $('start-finite').disabled = false;
    }
  };
  source.onopen = async () => {
    if (!source.started) {
      source.started = true;
      setStatus('finite-status', 'live', 'streaming');
      await fetch(`/finite/start?session=${session}`, { method: 'POST' });
    }
  };
});

// Desktop page: opens an upload session, shows its QR code, and subscribes to the session's
// topic; every `upload_by_qr` event is a photo to show at once. When the session expires
// the app ends the topic: a final `session_expired` event, then 204 on the reconnection,
// and EventSource stops for good.

const $ = (id) => document.getElementById(id);
const STATES = ['CONNECTING', 'OPEN', 'CLOSED'];
let source = null;
let deadline = 0;
let received = 0;
let maxPhotos = 0;

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function showState() {
  $('ready-state').textContent = source ? STATES[source.readyState] : '–';
}

function showCount() {
  $('count').textContent = `${received} of ${maxPhotos}`;
}

function size(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

function tick() {
  const left = Math.max(0, deadline - Date.now());
  if ($('session').dataset.state === 'expired') return;
  const minutes = Math.floor(left / 60000);
  const seconds = Math.floor((left % 60000) / 1000);
  $('countdown').textContent = left > 0 ? `${minutes}:${String(seconds).padStart(2, '0')}` : 'ending…';
}

function showPhoto(photo) {
  // A replay after a reconnection must not show a photo twice.
  if (document.querySelector(`#photos [data-number="${photo.number}"]`)) return;
  const item = document.createElement('li');
  item.dataset.number = String(photo.number);
  const link = document.createElement('a');
  link.href = photo.url;
  link.target = '_blank';
  link.rel = 'noopener';
  const image = document.createElement('img');
  image.src = photo.url;
  image.alt = photo.name;
  link.append(image);
  const caption = document.createElement('div');
  caption.className = 'caption';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = photo.name;
  const details = document.createElement('span');
  details.className = 'muted';
  details.textContent = `${size(photo.size)} · ${photo.type.replace('image/', '').toUpperCase()}`;
  caption.append(name, details);
  item.append(link, caption);
  $('photos').prepend(item);
  received = Math.max(received, photo.number);
  showCount();
}

function expired(text) {
  $('session').dataset.state = 'expired';
  $('countdown').textContent = 'expired';
  $('photos').dataset.empty = 'No photos were sent in this session.';
  setStatus('closed', text);
}

async function start() {
  const response = await fetch('/sessions', { method: 'POST' });
  if (!response.ok) {
    $('problem').hidden = false;
    $('problem').textContent = await response.text();
    setStatus('closed', 'no session');
    return;
  }
  const session = await response.json();
  deadline = Date.now() + session.expires_in_ms;
  maxPhotos = session.max_photos;
  showCount();
  $('session').dataset.phoneUrl = session.phone_url;
  $('session').dataset.state = 'live';
  $('qr').src = session.qr;
  $('phone-link').href = session.phone_url;
  $('phone-link').textContent = session.phone_url;
  tick();
  setInterval(tick, 1000);

  const url = new URL('/.well-known/mercure', location.origin);
  url.searchParams.append('match', session.topic);
  source = new EventSource(url, { withCredentials: true });
  source.onopen = () => { setStatus('live', 'waiting for photos'); showState(); };
  source.addEventListener('upload_by_qr', (event) => showPhoto(JSON.parse(event.data)));
  source.addEventListener('session_expired', () => expired('expired'));
  source.onerror = () => {
    showState();
    if (source.readyState === EventSource.CLOSED) {
      // The hub answered the reconnection with 204 (the topic was ended), or refused it:
      // either way this session's stream is over.
      expired('expired, stream closed');
    } else if ($('session').dataset.state !== 'expired') {
      setStatus('connecting', 'reconnecting');
    }
  };
  showState();
}

$('restart').addEventListener('click', () => location.reload());
await start();
document.body.dataset.ready = 'true';

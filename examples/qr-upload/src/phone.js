// Phone page: sends each chosen or taken photo to the session in its own request (the raw
// file as the body), so every photo succeeds or is refused on its own, with the app's reason.

const $ = (id) => document.getElementById(id);
const session = location.pathname.split('/')[2];
let limits = null;
let sent = 0;

function size(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

function stop(message) {
  for (const id of ['camera', 'library']) $(id).disabled = true;
  $('pickers').dataset.state = 'off';
  $('problem').hidden = false;
  $('problem').textContent = message;
  $('summary').textContent = 'This link no longer takes photos.';
}

function entry(file) {
  const item = document.createElement('li');
  const thumb = document.createElement('img');
  thumb.alt = '';
  thumb.src = URL.createObjectURL(file);
  thumb.onload = () => URL.revokeObjectURL(thumb.src);
  // Not decodable as an image (the app will say why): a blank tile instead of a broken icon.
  thumb.onerror = () => { URL.revokeObjectURL(thumb.src); thumb.replaceWith(Object.assign(document.createElement('span'), { className: 'thumb' })); };
  const text = document.createElement('div');
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = file.name || 'photo';
  const state = document.createElement('span');
  state.className = 'state';
  text.append(name, state);
  item.append(thumb, text);
  $('uploads').prepend(item);
  return (kind, message) => { item.dataset.state = kind; state.textContent = message; };
}

async function send(file) {
  const show = entry(file);
  if (limits && file.size > limits.max_photo_bytes) {
    show('refused', `Too large (${size(file.size)}): the limit is ${limits.max_photo_size} per photo.`);
    return;
  }
  show('sending', `Sending ${size(file.size)}…`);
  try {
    const response = await fetch(`/upload/${session}/photos?name=${encodeURIComponent(file.name)}`, {
      method: 'POST',
      headers: { 'Content-Type': file.type || 'application/octet-stream' },
      body: file,
    });
    if (response.ok) {
      sent += 1;
      show('sent', 'Sent — it is on your computer now.');
      return;
    }
    const reason = (await response.text()).trim();
    show('refused', reason);
    if (response.status === 410 || response.status === 404) stop(reason);
  } catch {
    show('refused', 'The upload did not get through: check the connection and try again.');
  }
}

async function sendAll(input) {
  const files = [...input.files];
  input.value = '';
  for (const file of files) await send(file);
}

for (const id of ['camera', 'library']) $(id).addEventListener('change', (event) => sendAll(event.target));

const response = await fetch(`/upload/${session}/info`);
if (response.ok) {
  limits = await response.json();
  const minutes = Math.max(1, Math.round(limits.expires_in_ms / 60000));
  $('summary').textContent = `Photos you send appear on your computer right away. This link works for ${minutes} more minute${minutes === 1 ? '' : 's'}.`;
  $('limits').textContent = `Up to ${limits.max_photos} photos, ${limits.max_photo_size} each (${limits.accepted}).`;
  for (const id of ['camera', 'library']) $(id).disabled = false;
} else {
  stop((await response.text()).trim());
}
document.body.dataset.ready = 'true';

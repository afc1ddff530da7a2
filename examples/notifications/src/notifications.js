// Member centre: subscribes to the hub on another origin with credentials (the HttpOnly cookie
// the app set at sign-in carries the token) and counts unread notifications.

const $ = (id) => document.getElementById(id);
const config = await (await fetch('/config')).json();
$('user').textContent = config.user;
let unread = 0;

const url = new URL('/.well-known/mercure', config.hub);
url.searchParams.append('match', config.topic);
const source = new EventSource(url, { withCredentials: true });
source.onopen = () => { $('status').dataset.state = 'live'; $('status').textContent = 'live'; };
source.onerror = () => { $('status').dataset.state = 'connecting'; $('status').textContent = 'reconnecting'; };
source.addEventListener('notification', (event) => {
  unread += 1;
  $('badge').textContent = String(unread);
  const item = document.createElement('li');
  item.textContent = JSON.parse(event.data).text;
  $('log').prepend(item);
});
$('notify').addEventListener('click', () => fetch('/notify', { method: 'POST' }));
$('read').addEventListener('click', () => { unread = 0; $('badge').textContent = '0'; });

// Home page: fills in this hub's own URL and settings, so the examples can be copied as is.

const origin = location.origin;
const hubUrl = `${origin}/.well-known/mercure`;

function setText(id, text) {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
}

function replaceOrigin(id) {
  const element = document.getElementById(id);
  if (element) element.textContent = element.textContent.replaceAll('http://127.0.0.1:3000', origin);
}

replaceOrigin('curl-subscribe');
replaceOrigin('curl-publish');
setText('hub-url', hubUrl);

try {
  const response = await fetch('/herald/info', { cache: 'no-store' });
  if (response.ok) {
    const info = await response.json();
    setText('hub-url', info.hub_url);
    setText('hub-store', info.store === 'memory' ? 'in memory (lost on restart)' : info.store);
    setText('hub-anonymous', info.anonymous ? 'anonymous allowed (public updates)' : 'token required');
    setText('hub-version', `v${info.version}`);
  }
} catch {
  setText('hub-store', 'unknown');
}

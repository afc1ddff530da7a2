// A hand-written Node.js SSE server, the peer `bench/compare.sh` measures beside Herald and
// Nchan: what a team writes when it does not use a hub. It speaks the subset of the Mercure
// protocol that `herald bench --target herald` uses, so the same load generator measures it:
//
//   GET  /.well-known/mercure?match=TOPIC   an event stream of TOPIC's updates
//   POST /.well-known/mercure               form topic=…&data=…: sent to every subscriber now
//
// Written the usual way: node:http, a Map from topic to open responses, each event formatted
// once and written to every response. No history, no authorization (the bench's token is
// ignored), one process (Node runs JavaScript on one thread).
//
// Run with: node bench/peers/node-sse.js PORT
'use strict';
const http = require('node:http');

const port = Number(process.argv[2] || 3000);
const subscribers = new Map(); // topic -> Set of responses
let nextId = 1;

function subscribe(req, res, url) {
  const topics = url.searchParams.getAll('match');
  if (topics.length === 0) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('match is required\n');
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
  });
  res.write('retry: 2000\n\n');
  for (const topic of topics) {
    if (!subscribers.has(topic)) subscribers.set(topic, new Set());
    subscribers.get(topic).add(res);
  }
  req.on('close', () => {
    for (const topic of topics) {
      const set = subscribers.get(topic);
      if (!set) continue;
      set.delete(res);
      if (set.size === 0) subscribers.delete(topic);
    }
  });
}

function publish(req, res) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const topic = form.get('topic');
    if (!topic) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('topic is required\n');
      return;
    }
    const id = `urn:node:${nextId++}`;
    const data = (form.get('data') || '').split('\n').map((line) => `data: ${line}\n`).join('');
    const frame = `id: ${id}\n${data}\n`;
    for (const subscriber of subscribers.get(topic) || []) subscriber.write(frame);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(id);
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname !== '/.well-known/mercure') {
    res.writeHead(404).end();
  } else if (req.method === 'GET') {
    subscribe(req, res, url);
  } else if (req.method === 'POST') {
    publish(req, res);
  } else {
    res.writeHead(405).end();
  }
});
// Subscribers stay for the whole run: no request or idle timeouts.
server.requestTimeout = 0;
server.headersTimeout = 0;
server.keepAliveTimeout = 60_000;
server.maxConnections = 100_000;
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  console.log(`node-sse listening on 127.0.0.1:${port}`);
});

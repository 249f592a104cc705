// A forward proxy between Chromium and wasm-bindgen-test-runner's page server, used by the wasm
// test stage of scripts/test.sh: every request goes on to the server on a connection of its own,
// closed after the answer.
//
// Why: the runner serves the test page with tiny_http 0.12, whose thread pool can leave a newly
// accepted connection queued behind workers that each hold an idle keep-alive connection open.
// Chromium opens several connections at once to load the page's modules, and on a 2-core machine
// the page then waited for a request that was never read until Chromium dropped an idle socket
// (300 s): chromedriver's "Timed out receiving message from renderer", no test run (the CI failure
// of 2026-12-01, and 5 runs in 6 here). With one request per connection, every server worker is
// free again as soon as it has answered.
//
//   node tests/support/one-request-per-connection.mjs   prints the port it listens on, then serves
import http from 'node:http';

const server = http.createServer((req, res) => {
  // A forward proxy is asked for absolute URLs; only the loopback is ever proxied.
  let target;
  try {
    target = new URL(req.url);
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (target.hostname !== '127.0.0.1' && target.hostname !== 'localhost') {
    res.writeHead(403).end();
    return;
  }
  const headers = { ...req.headers, connection: 'close' };
  delete headers['proxy-connection'];
  const upstream = http.request(target, { method: req.method, headers, agent: false }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
});

server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});

// The real service behind the demo and the end-to-end suite: the receiver (`sm-receiver`, crate
// receiver/) and the one fake SALESmanago API (`sm-fake`, crate fake-salesmanago/), started as
// the processes they are in production, on free ports of 127.0.0.1. Nothing here knows a
// SALESmanago rule: the receiver checks batches, the fake checks API calls.
//
//   const stack = await startStack({ allowedOrigins: ['http://127.0.0.1:8080'] });
//   stack.receiver.url   // POST /collect here (or through www/collector.mjs's relay)
//   await stack.fake.calls()
//   await stack.close();
//
// Build the binaries first: `cargo build -p salla-salesmanago-receiver -p fake-salesmanago`.
import dotenv from 'dotenv';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'target/debug');

/** The account sm-fake knows unless told otherwise (fake-salesmanago's demo account). */
export const DEMO_ACCOUNT = {
  clientId: 'demo-client',
  apiKey: 'demo-key',
  apiSecret: 'demo-secret',
  owner: 'owner@oud-store.example',
};

/** The Salla app's webhook secret the stack gives sm-receiver (SM_SALLA_WEBHOOK_SECRET) unless an
 * env file names its own: the demo and the tests sign `order.created` with it, as Salla would. */
export const DEMO_WEBHOOK_SECRET = 'demo-webhook-secret';

const STARTUP_MS = 15_000;

/** Reads an env file with `dotenv`, the JavaScript twin of the receiver's `dotenvy` (comments,
 * quotes, `export`), rather than a third parser of our own. */
export function readEnvFile(file) {
  return dotenv.parse(readFileSync(file, 'utf8'));
}

/**
 * Runs `bin` with `args` and `env`, its output appended to `logFile`, and resolves with what
 * `ready(line)` returns for the first stdout line it accepts. Rejects, with the log's tail, if the
 * process exits or stays silent for STARTUP_MS.
 */
function launchProcess(bin, args, env, logFile, ready) {
  const exe = path.join(BIN, bin);
  if (!existsSync(exe)) {
    return Promise.reject(new Error(`${exe} is missing: cargo build -p salla-salesmanago-receiver -p fake-salesmanago`));
  }
  const child = spawn(exe, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  const tail = [];
  const remember = (chunk) => {
    log.write(chunk);
    tail.push(...String(chunk).split('\n').filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - 20));
  };
  child.stderr.on('data', remember);
  return new Promise((resolve, reject) => {
    let pending = '';
    let found = false;
    const fail = (why) => {
      if (found) return;
      found = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${why}; its last lines (${logFile}):\n${tail.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`did not say it was ready within ${STARTUP_MS} ms`), STARTUP_MS);
    child.on('error', (e) => fail(`could not start: ${e.message}`));
    child.on('exit', (code, signal) => fail(`exited (${signal ?? code}) before it was ready`));
    child.stdout.on('data', (chunk) => {
      remember(chunk);
      if (found) return;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const value = ready(line);
        if (value === undefined) continue;
        found = true;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, value, log });
        return;
      }
    });
  });
}

/** Stops a child: SIGTERM (the receiver finishes what is in flight), SIGKILL after `graceMs`. */
function stopProcess(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    // 'close', not 'exit': its output is flushed to the log by then.
    child.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// Children must not outlive a test process that ends without closing its stack (a crash, a
// timeout): they would hold ports and keep forwarding.
const children = new Set();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

let started = 0;

/**
 * Starts sm-fake (unless `envFile` names a real account) and sm-receiver delivering to it.
 *
 * Options:
 * - `allowedOrigins`: the storefront origins the receiver answers CORS for (required: a browser
 *   posting from anywhere else is refused, as in production);
 * - `dir`: where both logs and the receiver's database go (default target/e2e/<pid>-<n>; removed
 *   on close unless `keep`);
 * - `dataDir`: the receiver's database elsewhere, kept as it is (default: a fresh `dir`/data);
 * - `envFile`: a receiver.env for a real SALESmanago account: then no fake is started;
 * - `receiverPort`: 0 (default) for a free one;
 * - `env`: more SM_* variables for the receiver (they win over the defaults below; webhooks are
 *   always on, with a fresh `SM_SECRET_KEY` per run unless `env`, the environment or `envFile`
 *   names one).
 *
 * Returns `{ receiver: { url, log }, fake: { url, calls(since), reset(), down(on) } | null,
 * account: { clientId }, webhook(body), dir, close() }`: `webhook` posts a Salla webhook body to
 * the receiver's `/salla/webhook`, authenticated with the app's secret as Salla does (signed, or
 * the token), and resolves with `{ status, answer }`.
 */
export async function startStack({ allowedOrigins, dir, dataDir, envFile = null, receiverPort = 0, env = {}, keep = false } = {}) {
  if (!allowedOrigins?.length) throw new Error('startStack: allowedOrigins must name the storefront origin(s)');
  dir ??= path.join(ROOT, 'target/e2e', `${process.pid}-${++started}`);
  if (!dataDir) {
    dataDir = path.join(dir, 'data');
    await rm(dataDir, { recursive: true, force: true });
  }
  await mkdir(dataDir, { recursive: true });
  const processes = [];
  const close = async () => {
    await Promise.all(processes.map(({ child, log }) => stopProcess(child).then(() => new Promise((r) => log.end(r)))));
    for (const p of processes) children.delete(p.child);
    if (!keep) await rm(dir, { recursive: true, force: true });
  };
  try {
    let fake = null;
    let account;
    const receiverEnv = { ...process.env };
    let file = {};
    if (envFile) {
      file = readEnvFile(envFile);
      // sm-receiver lets the environment win over its env file; so does this.
      account = { clientId: process.env.SM_CLIENT_ID ?? file.SM_CLIENT_ID };
    } else {
      const f = await launchProcess('sm-fake', ['--listen', '127.0.0.1:0'], process.env, path.join(dir, 'fake.log'), (line) =>
        line.match(/^sm-fake listening on (http:\/\/\S+)$/)?.[1],
      );
      processes.push(f);
      children.add(f.child);
      fake = fakeClient(f.value);
      account = { ...DEMO_ACCOUNT };
      Object.assign(receiverEnv, {
        SM_API_ENDPOINT: f.value,
        SM_CLIENT_ID: DEMO_ACCOUNT.clientId,
        SM_API_KEY: DEMO_ACCOUNT.apiKey,
        SM_API_SECRET: DEMO_ACCOUNT.apiSecret,
        SM_OWNER: DEMO_ACCOUNT.owner,
      });
    }
    Object.assign(receiverEnv, {
      SM_ALLOWED_ORIGINS: allowedOrigins.join(','),
      SM_LISTEN: `127.0.0.1:${receiverPort}`,
      SM_DATA_DIR: dataDir,
      // The relay in front is a reverse proxy: it names the browser's address in X-Forwarded-For.
      SM_TRUST_PROXY: 'true',
      ...env,
    });
    // Webhooks on, with the env file's (or the environment's) secret and strategy if it names
    // them, else the demo's.
    const webhookAuth = {
      secret: receiverEnv.SM_SALLA_WEBHOOK_SECRET ?? file.SM_SALLA_WEBHOOK_SECRET ?? DEMO_WEBHOOK_SECRET,
      strategy: receiverEnv.SM_SALLA_WEBHOOK_AUTH ?? file.SM_SALLA_WEBHOOK_AUTH ?? 'signature',
    };
    receiverEnv.SM_SALLA_WEBHOOK_SECRET = webhookAuth.secret;
    receiverEnv.SM_SALLA_WEBHOOK_AUTH = webhookAuth.strategy;
    // With webhooks on, sm-receiver seals the stores' API keys and secrets (app.settings.updated)
    // with SM_SECRET_KEY, and will not start without it: the environment's or the env file's
    // key, else one made for this run, as `openssl rand -base64 32` would (a `dataDir` kept
    // across runs with stores' settings in it needs the key they were sealed with: name it).
    receiverEnv.SM_SECRET_KEY ??= file.SM_SECRET_KEY ?? randomBytes(32).toString('base64');
    // The env file's account is the demo store's (Salla id 1305, www/storefront.js): its webhooks
    // go there, and no other store's.
    receiverEnv.SM_SALLA_STORE_ID ??= file.SM_SALLA_STORE_ID ?? '1305';
    const receiverLog = path.join(dir, 'receiver.log');
    const r = await launchProcess('sm-receiver', envFile ? ['--env-file', envFile] : [], receiverEnv, receiverLog, (line) => {
      // Its JSON log names the address it bound once it listens (port 0 picks a free one).
      try {
        const { fields } = JSON.parse(line);
        return fields?.message === 'receiver listening' ? `http://${fields.addr}` : undefined;
      } catch {
        return undefined;
      }
    });
    processes.push(r);
    children.add(r.child);
    await waitForHealth(r.value);
    const webhook = (body) => sendWebhook(r.value, webhookAuth, body);
    return { receiver: { url: r.value, log: receiverLog }, fake, account, webhook, dir, close };
  } catch (e) {
    await close();
    throw e;
  }
}

async function waitForHealth(url) {
  const end = Date.now() + STARTUP_MS;
  for (;;) {
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > end) throw new Error(`sm-receiver at ${url} did not answer /health`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Posts `body` (a Salla webhook: `{ event, merchant, created_at, data }`) as Salla's servers
 * do: the raw body with its hex HMAC-SHA256 in `X-Salla-Signature`, or the secret itself in
 * `Authorization` for the token strategy (docs/webhooks.md §2). */
async function sendWebhook(url, { secret, strategy }, body) {
  const raw = JSON.stringify(body);
  const auth = strategy.toLowerCase() === 'token'
    ? { Authorization: secret }
    : { 'X-Salla-Signature': createHmac('sha256', secret).update(raw).digest('hex'), 'X-Salla-Security-Strategy': 'Signature' };
  const r = await fetch(`${url}/salla/webhook`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...auth }, body: raw });
  const text = await r.text();
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = text;
  }
  return { status: r.status, answer };
}

/** sm-fake's test routes, as functions. */
function fakeClient(url) {
  const call = async (method, route) => {
    const r = await fetch(`${url}${route}`, { method });
    if (!r.ok) throw new Error(`sm-fake ${method} ${route}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  return {
    url,
    /** The API calls it answered, numbered above `since`: `{n, method, body, at, eventId?, refused?}`. */
    calls: (since = 0) => call('GET', `/calls?since=${since}`),
    reset: () => call('POST', '/reset'),
    down: (on) => call('POST', `/down?on=${on ? 1 : 0}`),
  };
}

// Lints docs/openapi.yaml (Redocly's recommended rules, warnings fail too), then starts the
// real server and checks its live answers against the document: every answer's status must be
// documented for its operation, with the documented media type, a body that validates against
// the schema, and every required header present and valid. Every operation must be exercised.
//
// usage: node check.mjs --binary build/userapi
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { lint, loadConfig } from '@redocly/openapi-core';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const specPath = path.join(here, '..', '..', 'docs', 'openapi.yaml');
const binary = process.argv[process.argv.indexOf('--binary') + 1];
if (!binary || process.argv.indexOf('--binary') < 0) {
  console.error('usage: node check.mjs --binary PATH');
  process.exit(2);
}

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

// 1. Lint.
const config = await loadConfig({ configPath: path.join(here, 'redocly.yaml') });
const problems = await lint({ ref: specPath, config });
for (const p of problems)
  console.log(`  ${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? ''}`);
check(problems.length === 0, `redocly lint (recommended): ${problems.length} problem(s)`);

// 2. Schemas, compiled against the whole document so that $refs resolve.
const spec = YAML.parse(readFileSync(specPath, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: 'openapi', components: spec.components });
const deref = (obj) => {
  if (obj && obj.$ref) {
    const parts = obj.$ref.replace(/^#\//, '').split('/');
    return deref(parts.reduce((o, k) => o[k], spec));
  }
  return obj;
};
const validator = (schema) =>
  schema.$ref ? ajv.getSchema(`openapi${schema.$ref}`) : ajv.compile({ ...schema, $id: undefined });

const templates = Object.keys(spec.paths).map((t) => ({
  template: t,
  re: new RegExp('^' + t.replace(/\{[^}]+\}/g, '[^/]+') + '$'),
}));
const exercised = new Set();

function send(port, { method, target, headers = {}, body, source }) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: target, headers, localAddress: source, agent: false, timeout: 10000 },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function conforms(req, res) {
  const label = `${req.method} ${req.target} -> ${res.status}`;
  const pathOnly = req.target.split('?')[0];
  const match = templates.find((t) => t.re.test(pathOnly));
  let documented;
  if (!match) {
    // An unknown path is 404 problem+json, described in info.description.
    check(res.status === 404, `${label}: an undocumented path answers 404`);
    documented = deref(spec.components.responses.NotFound);
  } else {
    const op = spec.paths[match.template][req.method.toLowerCase()];
    const standard = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
    if (!standard.includes(req.method)) {
      check(res.status === 501, `${label}: a method HTTP does not define is 501`);
      // Path-independent, so described in info.description: problem+json like every error.
      documented = {
        headers: { 'X-Request-Id': spec.components.headers['X-Request-Id'] },
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      };
    } else if (!op) {
      check(res.status === 405 && res.headers.allow, `${label}: a method the path does not serve is 405 with Allow`);
      documented = deref(spec.components.responses.MethodNotAllowed);
    } else {
      exercised.add(op.operationId);
      documented = op.responses[String(res.status)] && deref(op.responses[String(res.status)]);
      check(Boolean(documented), `${label}: status documented for ${op.operationId}`);
      if (!documented) return;
    }
  }
  for (const [name, h] of Object.entries(documented.headers ?? {})) {
    const header = deref(h);
    const value = res.headers[name.toLowerCase()];
    if (value === undefined) {
      if (header.required) check(false, `${label}: required header ${name} present`);
      continue;
    }
    const v = validator(header.schema);
    check(v(value), `${label}: header ${name}: ${JSON.stringify(value)} ${v.errors ? ajv.errorsText(v.errors) : ''}`);
  }
  const content = documented.content;
  if (req.method === 'HEAD' || !content) {
    check(res.body.length === 0 || Boolean(content), `${label}: no body where none is documented`);
    return;
  }
  const type = (res.headers['content-type'] ?? '').split(';')[0].trim();
  const media = content[type];
  check(Boolean(media), `${label}: Content-Type ${type} documented (${Object.keys(content)})`);
  if (!media) return;
  let body = res.body.toString('utf8');
  if (type.endsWith('json')) {
    try {
      body = JSON.parse(body);
    } catch {
      check(false, `${label}: body is JSON`);
      return;
    }
  }
  const v = validator(media.schema);
  check(v(body), `${label}: body matches schema ${v.errors ? ajv.errorsText(v.errors) : ''}`);
}

function start(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--port', '0', '--data', ':memory:', '--log-level', 'warn', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => reject(new Error('userapi did not start')), 15000);
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.on('exit', (code) => reject(new Error(`userapi exited ${code}`)));
  });
}

async function stop(server) {
  const exited = new Promise((r) => server.proc.once('exit', r));
  server.proc.kill('SIGTERM');
  await exited;
}

const json = { 'Content-Type': 'application/json' };
const merge = { 'Content-Type': 'application/merge-patch+json' };
const token = 'openapi-check-token';

async function mainServer() {
  const server = await start(['--db-latency-ms', '20', '--admin-token', token]);
  const cases = [
    { method: 'GET', target: '/users/1', status: 200 },
    { method: 'GET', target: '/users/1', status: 200 },
    { method: 'HEAD', target: '/users/1', status: 200 },
    { method: 'GET', target: '/users/999999', status: 404 },
    { method: 'GET', target: '/users/abc', status: 400 },
    { method: 'GET', target: '/users/01', status: 400 },
    { method: 'PUT', target: '/users/1', status: 405 },
    { method: 'POST', target: '/users', headers: json, body: '{"name":"Open Api","email":"open.api@example.com"}', status: 201 },
    { method: 'POST', target: '/users', headers: json, body: '{"name":"Other","email":"OPEN.API@example.com"}', status: 409 },
    { method: 'POST', target: '/users', headers: json, body: '{"name":"No Email"}', status: 400 },
    { method: 'POST', target: '/users', headers: json, body: '{"name":"A","email":"a@b.co","id":7}', status: 400 },
    { method: 'POST', target: '/users', headers: json, body: '{"name":', status: 400 },
    { method: 'POST', target: '/users', headers: { 'Content-Type': 'text/plain' }, body: 'x', status: 415 },
    { method: 'POST', target: '/users', headers: json, body: JSON.stringify({ name: 'x'.repeat(20000), email: 'big@example.com' }), status: 413 },
    { method: 'GET', target: '/cache-status', status: 200 },
    { method: 'HEAD', target: '/cache-status', status: 200 },
    { method: 'DELETE', target: '/cache', status: 401 },
    { method: 'DELETE', target: '/cache', headers: { Authorization: 'Bearer wrong' }, status: 403 },
    { method: 'DELETE', target: '/cache', headers: { Authorization: `Bearer ${token}` }, status: 200 },
    { method: 'GET', target: '/healthz', headers: { 'X-Request-Id': 'openapi-1' }, status: 200 },
    { method: 'HEAD', target: '/healthz', status: 200 },
    { method: 'POST', target: '/healthz', status: 405 },
    { method: 'GET', target: '/metrics', status: 200 },
    { method: 'HEAD', target: '/metrics', status: 200 },
    { method: 'GET', target: '/nowhere', status: 404 },
    { method: 'GET', target: '/users/2', headers: { 'X-Padding': 'p'.repeat(9000) }, status: 431 },
    { method: 'GET', target: '/users/1', headers: { 'If-None-Match': '"1-1"' }, status: 304 },
    { method: 'HEAD', target: '/users/1', headers: { 'If-None-Match': '*' }, status: 304 },
    { method: 'GET', target: '/users?limit=2', status: 200 },
    { method: 'GET', target: '/users?after=2', status: 200 },
    { method: 'HEAD', target: '/users?limit=2', status: 200 },
    { method: 'GET', target: '/users?limit=0', status: 400 },
    { method: 'PATCH', target: '/users/2', headers: merge, body: '{"name":"Patched"}', status: 200 },
    { method: 'PATCH', target: '/users/2', headers: { ...merge, 'If-Match': '"2-9"' }, body: '{"name":"No"}', status: 412 },
    { method: 'PATCH', target: '/users/999999', headers: merge, body: '{"name":"Nobody"}', status: 404 },
    { method: 'PATCH', target: '/users/2', headers: merge, body: '{"name":null}', status: 400 },
    { method: 'PATCH', target: '/users/2', headers: merge, body: '{"email":"user3@example.com"}', status: 409 },
    { method: 'PATCH', target: '/users/2', headers: { 'Content-Type': 'text/plain' }, body: 'x', status: 415 },
    { method: 'DELETE', target: '/users/3', headers: { 'If-Match': '"3-7"' }, status: 412 },
    { method: 'DELETE', target: '/users/3', status: 204 },
    { method: 'DELETE', target: '/users/3', status: 404 },
    { method: 'FOO', target: '/users/1', status: 501 },
    { method: 'GET', target: '/readyz', status: 200 },
    { method: 'HEAD', target: '/readyz', status: 200 },
  ];
  // Each case from its own loopback address, so the default burst of 5 limits none of them;
  // then one address spends its burst to reach a 429.
  let n = 10;
  for (const c of cases) c.source = `127.0.1.${n++}`;
  for (let i = 0; i < 6; i++) cases.push({ method: 'GET', target: '/users/1', source: '127.0.2.1', status: i < 5 ? 200 : 429 });
  try {
    for (const c of cases) {
      const res = await send(server.port, c);
      check(res.status === c.status, `${c.method} ${c.target}: expected ${c.status}, got ${res.status}`);
      if (/^\/(users|cache)/.test(c.target) && res.status !== 431)
        check('ratelimit-limit' in res.headers && 'ratelimit' in res.headers, `${c.method} ${c.target}: RateLimit headers (limiter on)`);
      conforms(c, res);
    }
  } finally {
    await stop(server);
  }
}

// A slow database: one read runs, the next waits past the request timeout (504), and the
// queue (limit 1) refuses the third (503).
async function slowServer() {
  const server = await start(['--db-latency-ms', '300', '--request-timeout-ms', '450', '--db-queue-limit', '1', '--no-rate-limit']);
  try {
    const reqs = [1, 2, 3].map((id) => ({ method: 'GET', target: `/users/${id}` }));
    const pending = [];
    for (const r of reqs) {
      pending.push(send(server.port, r));
      await new Promise((res) => setTimeout(res, 30));  // keep arrival order 1, 2, 3
    }
    const answers = await Promise.all(pending);
    check(JSON.stringify(answers.map((a) => a.status)) === '[200,504,503]',
      `slow database: 200, 504, 503 (got ${answers.map((a) => a.status)})`);
    reqs.forEach((r, i) => conforms(r, answers[i]));
  } finally {
    await stop(server);
  }
}

// --require-if-match: a write without If-Match is 428.
async function requireIfMatchServer() {
  const server = await start(['--db-latency-ms', '0', '--no-rate-limit', '--require-if-match']);
  try {
    for (const c of [
      { method: 'PATCH', target: '/users/1', headers: merge, body: '{"name":"X"}', status: 428 },
      { method: 'DELETE', target: '/users/1', status: 428 },
    ]) {
      const res = await send(server.port, c);
      check(res.status === c.status, `${c.method} ${c.target}: expected ${c.status}, got ${res.status}`);
      conforms(c, res);
    }
  } finally {
    await stop(server);
  }
}

// Credentials configured (an API key file): 401 without a bearer or with an unknown one, 400 for
// another scheme, 403 for a missing scope, 200 with the key and its identity's RateLimit policy.
async function credentialsServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'userapi-openapi-'));
  const reader = randomBytes(32).toString('base64url');
  const keys = path.join(dir, 'keys.json');
  const sha256 = createHash('sha256').update(reader).digest('hex');
  writeFileSync(keys, JSON.stringify({ keys: [{ id: 'reader', sha256, scopes: ['users:read'] }] }));
  const server = await start(['--db-latency-ms', '0', '--api-keys', keys, '--rate-limit-capacity', '100']);
  const bearer = { Authorization: `Bearer ${reader}` };
  try {
    for (const c of [
      { method: 'GET', target: '/users/1', status: 401 },
      { method: 'GET', target: '/users/1', headers: { Authorization: 'Bearer unknown' }, status: 401 },
      { method: 'GET', target: '/users/1', headers: { Authorization: 'Basic eDp5' }, status: 400 },
      { method: 'GET', target: '/users/1', headers: bearer, status: 200 },
      { method: 'GET', target: '/users?limit=1', headers: bearer, status: 200 },
      { method: 'POST', target: '/users', headers: { ...json, ...bearer }, body: '{"name":"N","email":"n@example.com"}', status: 403 },
      { method: 'GET', target: '/cache-status', headers: bearer, status: 403 },
      { method: 'DELETE', target: '/cache', status: 401 },
    ]) {
      const res = await send(server.port, c);
      check(res.status === c.status, `credentials: ${c.method} ${c.target}: expected ${c.status}, got ${res.status}`);
      if (c.headers?.Authorization === bearer.Authorization)
        check(/^"identity";/.test(res.headers['ratelimit-policy'] ?? ''), `credentials: ${c.method} ${c.target}: the identity's RateLimit-Policy`);
      conforms(c, res);
    }
  } finally {
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

await mainServer();
await slowServer();
await requireIfMatchServer();
await credentialsServer();
for (const [p, ops] of Object.entries(spec.paths))
  for (const [m, op] of Object.entries(ops))
    if (op.operationId) check(exercised.has(op.operationId), `${m.toUpperCase()} ${p} (${op.operationId}) exercised`);

if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');

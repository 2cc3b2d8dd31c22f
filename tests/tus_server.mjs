#!/usr/bin/env node
// Reference tus 1.0 server for steadypost's integration tests and benchmarks.
//
// Runs @tus/server with @tus/file-store on loopback and prints exactly one line on
// stdout once it accepts connections:
//
//     LISTENING http://127.0.0.1:PORT/files/
//
// Everything else (errors, optional request log) goes to stderr.
//
// Usage:
//     node tests/tus_server.mjs [--port N] [--dir PATH] [--host H]
//                               [--expiration-ms N] [--max-size N] [--relative-location]
//                               [--tls-cert PEM --tls-key PEM]
//
// Every flag has an environment fallback (flags win):
//     TUS_PORT                 port to bind; 0 (default) lets the kernel pick a free one
//     TUS_STORAGE_DIR          where @tus/file-store keeps uploads (default ./tus-data)
//     TUS_HOST                 address to bind (default 127.0.0.1)
//     TUS_EXPIRATION_MS        > 0 enables expiration: uploads older than this answer 410 and
//                              PATCH/POST answers carry Upload-Expires (default: disabled)
//     TUS_CLEANUP_INTERVAL_MS  > 0 also deletes expired unfinished uploads every N ms
//     TUS_MAX_SIZE             > 0 sets maxSize (Tus-Max-Size in OPTIONS, 413 above it)
//     TUS_RELATIVE_LOCATION    "1" answers POST with a relative Location (/files/ID)
//     TUS_EXIT_ON_STDIN_EOF    "1" exits when stdin closes (so a dead parent never leaves an
//                              orphan server behind)
//     TUS_LOG_REQUESTS         "1" logs one line per request on stderr
//     TUS_TLS_CERT, TUS_TLS_KEY  PEM files: serve HTTPS (Node's own `https`) instead of HTTP;
//                              the LISTENING line and every Location then say https://
//
// The server exits 0 on SIGTERM/SIGINT after closing its listener and letting in-flight
// requests settle (bounded by a short grace period).

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import process from 'node:process';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const SHUTDOWN_GRACE_MS = 5000;

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const take = () => {
      const value = argv[++i];
      if (value === undefined) {
        fail(`missing value for ${arg}`);
      }
      return value;
    };
    switch (arg) {
      case '--port':
        out.port = take();
        break;
      case '--dir':
        out.dir = take();
        break;
      case '--host':
        out.host = take();
        break;
      case '--expiration-ms':
        out.expirationMs = take();
        break;
      case '--cleanup-interval-ms':
        out.cleanupIntervalMs = take();
        break;
      case '--max-size':
        out.maxSize = take();
        break;
      case '--relative-location':
        out.relativeLocation = '1';
        break;
      case '--tls-cert':
        out.tlsCert = take();
        break;
      case '--tls-key':
        out.tlsKey = take();
        break;
      default:
        fail(`unknown argument: ${arg}`);
    }
  }
  return out;
}

function fail(message) {
  process.stderr.write(`tus_server: ${message}\n`);
  process.exit(2);
}

function toInt(name, raw, fallback) {
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    fail(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const args = parseArgs(process.argv.slice(2));
const env = process.env;
const host = args.host ?? env.TUS_HOST ?? '127.0.0.1';
const port = toInt('port', args.port ?? env.TUS_PORT, 0);
const directory = path.resolve(args.dir ?? env.TUS_STORAGE_DIR ?? 'tus-data');
const expirationMs = toInt('expiration', args.expirationMs ?? env.TUS_EXPIRATION_MS, 0);
const cleanupIntervalMs = toInt(
  'cleanup interval',
  args.cleanupIntervalMs ?? env.TUS_CLEANUP_INTERVAL_MS,
  0,
);
const maxSize = toInt('max size', args.maxSize ?? env.TUS_MAX_SIZE, 0);
const relativeLocation = (args.relativeLocation ?? env.TUS_RELATIVE_LOCATION) === '1';
const logRequests = env.TUS_LOG_REQUESTS === '1';
const tlsCert = args.tlsCert ?? env.TUS_TLS_CERT;
const tlsKey = args.tlsKey ?? env.TUS_TLS_KEY;
if (Boolean(tlsCert) !== Boolean(tlsKey)) {
  fail('--tls-cert and --tls-key go together');
}
const scheme = tlsCert ? 'https' : 'http';

// With expirationPeriodInMilliseconds = 0 the store still lists "expiration" among its
// extensions, but no upload ever expires and no Upload-Expires header is sent.
const datastore = new FileStore({
  directory,
  expirationPeriodInMilliseconds: expirationMs,
});

const tus = new Server({
  path: '/files',
  datastore,
  // Absolute Location built from the request's Host header (http://127.0.0.1:PORT/files/ID).
  // Forwarded / X-Forwarded-* headers are ignored: nothing sits in front of this server.
  relativeLocation,
  respectForwardedHeaders: false,
  // @tus/server assumes http:// unless a proxy header says otherwise; behind TLS say https.
  ...(tlsCert && !relativeLocation
    ? { generateUrl: (_req, { host, path: base, id }) => `https://${host}${base}/${id}` }
    : {}),
  ...(maxSize > 0 ? { maxSize } : {}),
});

let inFlight = 0;
let shuttingDown = false;
let onIdle = null;

function handler(req, res) {
  inFlight++;
  const started = Date.now();
  if (logRequests) {
    res.on('finish', () => {
      process.stderr.write(
        `tus_server: ${req.method} ${req.url} -> ${res.statusCode} (${Date.now() - started} ms)\n`,
      );
    });
  }
  tus
    .handle(req, res)
    .catch((error) => {
      process.stderr.write(`tus_server: handler error: ${error?.stack ?? error}\n`);
      if (!res.headersSent) {
        res.statusCode = 500;
      }
      res.end();
    })
    .finally(() => {
      inFlight--;
      if (inFlight === 0 && onIdle) {
        onIdle();
      }
    });
}

const httpServer = tlsCert
  ? https.createServer({ cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) }, handler)
  : http.createServer(handler);

// Large PATCH bodies on a slow client must not be cut by Node's default request timeout.
httpServer.requestTimeout = 0;
httpServer.headersTimeout = 60_000;

httpServer.on('error', (error) => {
  process.stderr.write(`tus_server: ${error.code ?? ''} ${error.message}\n`);
  process.exit(1);
});

let cleanupTimer = null;

httpServer.listen(port, host, () => {
  const address = httpServer.address();
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stdout.write(`LISTENING ${scheme}://${shownHost}:${address.port}/files/\n`);
  if (expirationMs > 0 && cleanupIntervalMs > 0) {
    cleanupTimer = setInterval(() => {
      tus.cleanUpExpiredUploads().catch((error) => {
        process.stderr.write(`tus_server: cleanup failed: ${error?.message ?? error}\n`);
      });
    }, cleanupIntervalMs);
    cleanupTimer.unref();
  }
});

function shutdown(reason) {
  if (shuttingDown) {
    return;
  }
  shuttingDown = true;
  if (logRequests) {
    process.stderr.write(`tus_server: shutting down (${reason})\n`);
  }
  if (cleanupTimer) {
    clearInterval(cleanupTimer);
  }
  const hardStop = setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS);
  hardStop.unref();
  let closed = false;
  const maybeExit = () => {
    if (closed && inFlight === 0) {
      process.exit(0);
    }
  };
  onIdle = maybeExit;
  httpServer.close(() => {
    closed = true;
    maybeExit();
  });
  // Drop idle keep-alive sockets now and cut the active ones: an interrupted PATCH keeps
  // the bytes that reached the store, exactly as after a network failure.
  httpServer.closeIdleConnections();
  httpServer.closeAllConnections();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

if (env.TUS_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

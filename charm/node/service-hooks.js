// Loaded into every parse-server process by the Parse Server charm (node --require), before
// parse-server itself:
//
// - No log files: parse-server builds a default logger as its modules load, before it reads
//   its options, and that logger writes files under ./logs unless parse-server's defaults see
//   PARSE_SERVER_LOGS_FOLDER=null. The CLI reads the same variable as a folder named "null"
//   (and it wins over the option file), so it is set only while the defaults load; the option
//   file's "logsFolder": null then turns off the files of the logger parse-server configures.
// - PostgreSQL's user and password come from the charm's credentials file (0640, root and
//   the service's group) as PGUSER/PGPASSWORD, which parse-server's PostgreSQL client (pg)
//   reads when its URI names none: parse-server's own URI parser would hand them on still
//   percent-encoded, so a password with a space or a quote would never authenticate.
// - On SIGUSR2 the process writes its V8 heap statistics to the service's state directory,
//   for the charm's memory-report action.
// - The balancer's check, GET /parse-server-charm/ready (a path outside the mount path, which
//   the balancer never routes to: only the balancer asks it), answers as parse-server's own
//   `<mount>/health` does, except while the process drains.
// - On SIGTERM (a stop or restart) the process drains instead of dropping its connections:
//   for PARSE_SERVER_CHARM_DRAIN_SECONDS (set when a load balancer is related) the balancer's
//   check answers 503 while every other request, `<mount>/health` included, is still served,
//   so that the balancer takes the unit out of rotation while clients (and their uptime
//   monitors) see nothing fail; then it stops listening, lets the requests in flight finish
//   and exits. parse-server's own SIGTERM handler would close the database and destroy every
//   connection at once, failing the requests in flight.
'use strict';

const fs = require('fs');
const v8 = require('v8');
const path = require('path');
const http = require('http');
const cluster = require('cluster');

(function defaultsWithoutLogFiles() {
  const main = process.argv[1];
  if (!main) {
    return;
  }
  const defaults = path.join(path.dirname(main), '..', 'lib', 'defaults.js');
  const before = process.env.PARSE_SERVER_LOGS_FOLDER;
  process.env.PARSE_SERVER_LOGS_FOLDER = 'null';
  try {
    require(defaults);
  } catch {
    /* not parse-server's layout: nothing to keep from writing */
  } finally {
    if (before === undefined) {
      delete process.env.PARSE_SERVER_LOGS_FOLDER;
    } else {
      process.env.PARSE_SERVER_LOGS_FOLDER = before;
    }
  }
})();

(function databaseCredentials() {
  const file =
    process.env.PARSE_SERVER_CHARM_DATABASE_CREDENTIALS ||
    '/etc/parse-server/database-credentials.json';
  let credentials;
  try {
    credentials = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return; /* no PostgreSQL credentials to give (MongoDB, or none in the URI) */
  }
  if (typeof credentials.user === 'string') {
    process.env.PGUSER = credentials.user;
  }
  if (typeof credentials.password === 'string') {
    process.env.PGPASSWORD = credentials.password;
  }
})();

const STATE_DIR = process.env.PARSE_SERVER_CHARM_STATE_DIR || '/var/lib/parse-server';
const DRAIN_MS = 1000 * Number(process.env.PARSE_SERVER_CHARM_DRAIN_SECONDS || 0);
const FINISH_MS = 20000;

process.on('SIGUSR2', () => {
  const h = v8.getHeapStatistics();
  const report = {
    pid: process.pid,
    used_heap_size: h.used_heap_size,
    total_heap_size: h.total_heap_size,
    heap_size_limit: h.heap_size_limit,
  };
  const file = path.join(STATE_DIR, `heap-${process.pid}.json`);
  try {
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(report));
    fs.renameSync(`${file}.tmp`, file);
  } catch {
    /* the report is best effort */
  }
});

const servers = [];
const originalListen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  servers.push(this);
  return originalListen.apply(this, args);
};

const BALANCER_CHECK = '/parse-server-charm/ready';

// parse-server's own health check: `<mountPath>/health` of the option file the process was
// started with (its last argument).
const HEALTH = (function healthPath() {
  let mount = '/parse';
  try {
    const options = JSON.parse(fs.readFileSync(process.argv[process.argv.length - 1], 'utf8'));
    if (typeof options.mountPath === 'string') {
      mount = options.mountPath;
    }
  } catch {
    /* not started with an option file: parse-server's default mount path */
  }
  return `${mount.replace(/\/+$/, '')}/health`;
})();

let draining = false;
const originalEmit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res, ...rest) {
  if (event === 'request' && (req.url || '').split('?')[0] === BALANCER_CHECK) {
    if (draining) {
      res.writeHead(503, { 'Content-Type': 'application/json', Connection: 'close' });
      res.end('{"status":"shutting down"}');
      return true;
    }
    req.url = HEALTH;
  }
  return originalEmit.call(this, event, req, res, ...rest);
};

function finish() {
  const closing = servers.map(
    s =>
      new Promise(resolve => {
        try {
          s.close(() => resolve());
          if (typeof s.closeIdleConnections === 'function') {
            s.closeIdleConnections();
          }
        } catch {
          resolve();
        }
      })
  );
  const deadline = new Promise(resolve => setTimeout(resolve, FINISH_MS).unref());
  Promise.race([Promise.all(closing), deadline]).then(() => process.exit(0));
}

function onTerminate() {
  if (draining) {
    return;
  }
  draining = true;
  if (cluster.isPrimary && !servers.length) {
    // The cluster master: no new workers from now on; it ends when they have.
    cluster.fork = () => null;
    const done = () => {
      if (Object.keys(cluster.workers || {}).length === 0) {
        process.exit(0);
      }
    };
    cluster.on('exit', done);
    setTimeout(() => process.exit(0), DRAIN_MS + FINISH_MS).unref();
    done();
    return;
  }
  setTimeout(finish, DRAIN_MS);
}

process.on('SIGTERM', onTerminate);
process.on('SIGINT', onTerminate);

// parse-server registers its own SIGTERM/SIGINT handler (close the database, destroy every
// connection at once): the drain above replaces it.
for (const method of ['on', 'addListener', 'once', 'prependListener']) {
  const original = process[method];
  process[method] = function (event, listener) {
    if ((event === 'SIGTERM' || event === 'SIGINT') && listener !== onTerminate) {
      return process;
    }
    return original.call(this, event, listener);
  };
}

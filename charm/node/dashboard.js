'use strict';
// Parse Dashboard as the charm runs it on every unit (parse-dashboard.service):
//
//   node dashboard.js /etc/parse-server/dashboard.json
//
// The file (rendered by the charm, readable by root and the service group only) holds the
// dashboard's own options (`dashboard`: the app with its keys, the users with bcrypt
// hashes) and what this program needs around it: the tree parse-dashboard is installed in,
// the port, the balancers whose X-Forwarded-* headers are believed, the cookie secret every
// unit shares, and the unit's own parse-server (on the loopback) where sessions are kept.
//
// Why sessions live in parse-server: parse-dashboard 9 keeps a login session (and the CSRF
// token bound to it) in express-session's memory store by default, so a session made on one
// unit is unknown to the next unit haproxy sends the browser to. parse-dashboard accepts
// any express-session store (`cookieSessionStore`); this one keeps each session as an
// object of a class only the master key may read, keyed by a digest of the session ID.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { createRequire } = require('module');

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const fromTree = createRequire(path.join(config.tree, 'package.json'));
const express = fromTree('express');
const session = fromTree('express-session');
const ParseDashboard = fromTree('parse-dashboard');

const SESSION_CLASS = 'ParseDashboardSession';
// What the balancers ask (never touches a session: a check must not create one).
const READY_PATH = '/parse-dashboard-charm/ready';

class ParseSessionStore extends session.Store {
  constructor({ serverURL, appId, masterKey }, maxAgeMs) {
    super();
    this.base = serverURL.replace(/\/$/, '');
    this.maxAgeMs = maxAgeMs;
    this.headers = {
      'X-Parse-Application-Id': appId,
      'X-Parse-Master-Key': masterKey,
      'Content-Type': 'application/json',
    };
  }

  async request(method, route, body) {
    const res = await fetch(this.base + route, {
      method,
      headers: this.headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
    const text = await res.text();
    let json = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch (e) {
      json = {};
    }
    if (!res.ok) {
      const err = new Error(
        `parse-server answered ${res.status} to ${method} ${route.split('?')[0]}: ${json.error || ''}`
      );
      err.parseCode = json.code;
      throw err;
    }
    return json;
  }

  static digest(sid) {
    return crypto.createHash('sha256').update(sid).digest('hex');
  }

  async find(sid) {
    const where = encodeURIComponent(JSON.stringify({ sid: ParseSessionStore.digest(sid) }));
    const found = await this.request('GET', `/classes/${SESSION_CLASS}?where=${where}&limit=1`);
    return (found.results || [])[0];
  }

  expiry(sess) {
    const at = sess && sess.cookie && sess.cookie.expires;
    return new Date(at ? new Date(at).getTime() : Date.now() + this.maxAgeMs);
  }

  get(sid, cb) {
    this.find(sid).then(
      (o) => {
        if (!o) return cb(null, null);
        if (o.expiresAt && new Date(o.expiresAt.iso) <= new Date()) {
          return this.request('DELETE', `/classes/${SESSION_CLASS}/${o.objectId}`).then(
            () => cb(null, null),
            () => cb(null, null)
          );
        }
        let data = null;
        try {
          data = JSON.parse(o.data);
        } catch (e) {
          data = null;
        }
        return cb(null, data);
      },
      (e) => cb(e)
    );
  }

  set(sid, sess, cb) {
    const body = {
      sid: ParseSessionStore.digest(sid),
      data: JSON.stringify(sess),
      expiresAt: { __type: 'Date', iso: this.expiry(sess).toISOString() },
    };
    this.find(sid)
      .then((o) =>
        o
          ? this.request('PUT', `/classes/${SESSION_CLASS}/${o.objectId}`, body)
          : this.request('POST', `/classes/${SESSION_CLASS}`, body)
      )
      .then(() => cb && cb(null), (e) => cb && cb(e));
  }

  touch(sid, sess, cb) {
    this.find(sid)
      .then((o) =>
        o
          ? this.request('PUT', `/classes/${SESSION_CLASS}/${o.objectId}`, {
              expiresAt: { __type: 'Date', iso: this.expiry(sess).toISOString() },
            })
          : null
      )
      .then(() => cb && cb(null), (e) => cb && cb(e));
  }

  destroy(sid, cb) {
    this.find(sid)
      .then((o) => (o ? this.request('DELETE', `/classes/${SESSION_CLASS}/${o.objectId}`) : null))
      .then(() => cb && cb(null), (e) => cb && cb(e));
  }

  // The class readable by the master key only; created by whichever unit comes first.
  async ensureClass() {
    const clp = {
      find: {},
      count: {},
      get: {},
      create: {},
      update: {},
      delete: {},
      addField: {},
      protectedFields: {},
    };
    const fields = { sid: { type: 'String' }, data: { type: 'String' }, expiresAt: { type: 'Date' } };
    try {
      await this.request('POST', `/schemas/${SESSION_CLASS}`, {
        className: SESSION_CLASS,
        fields,
        classLevelPermissions: clp,
      });
    } catch (e) {
      // 103: the class exists (another unit made it); make sure of its permissions.
      if (e.parseCode !== 103) throw e;
      await this.request('PUT', `/schemas/${SESSION_CLASS}`, { classLevelPermissions: clp });
    }
  }

  // Expired sessions go (each unit sweeps; deleting one twice is harmless).
  async sweep() {
    const where = encodeURIComponent(
      JSON.stringify({ expiresAt: { $lt: { __type: 'Date', iso: new Date().toISOString() } } })
    );
    const found = await this.request('GET', `/classes/${SESSION_CLASS}?where=${where}&limit=100&keys=objectId`);
    const requests = (found.results || []).map((o) => ({
      method: 'DELETE',
      path: `${new URL(this.base).pathname.replace(/\/$/, '')}/classes/${SESSION_CLASS}/${o.objectId}`,
    }));
    if (requests.length) await this.request('POST', '/batch', { requests });
  }
}

const store = new ParseSessionStore(config.sessionStore, config.cookieSessionMaxAgeMs);

async function prepareStore(attempt) {
  try {
    await store.ensureClass();
  } catch (e) {
    const delay = Math.min(30000, 1000 * 2 ** Math.min(attempt, 5));
    console.error(`session class not ready (${e.message}); again in ${delay / 1000} s`);
    setTimeout(() => prepareStore(attempt + 1), delay).unref();
  }
}
prepareStore(0);
setInterval(() => store.sweep().catch((e) => console.error(`session sweep: ${e.message}`)), 3600 * 1000).unref();

const app = express();
app.disable('x-powered-by');
// The mounted dashboard inherits this: only the balancers' X-Forwarded-* headers are
// believed (the client's address, and whether it came over HTTPS).
app.set('trust proxy', config.trustProxy.length ? config.trustProxy : false);
app.get(READY_PATH, (req, res) => res.type('text/plain').send('ok'));
// express-session sends a response's headers and all of its body but the last byte before
// the session is saved, and the rest once the store answered. A browser follows a redirect
// on its headers alone: the next request (a login's redirect to the apps, a refused login's
// back to the form with its message) may reach another unit before the session it needs is
// in parse-server. So the pages and JSON answers (not the static files, which never touch
// a session) leave only once complete: headers and body held until `end`.
const STATIC = /^\/(bundles\/|favicon\.ico$)/;
app.use((req, res, next) => {
  if (STATIC.test(req.path)) return next();
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  const held = [];
  res.write = (chunk, encoding, cb) => {
    held.push([chunk, typeof encoding === 'string' ? encoding : undefined]);
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
  res.end = (chunk, encoding, cb) => {
    for (const [c, e] of held.splice(0)) write(c, e);
    return end(chunk, encoding, cb);
  };
  next();
});
app.use(
  '/',
  new ParseDashboard(config.dashboard, {
    allowInsecureHTTP: config.allowInsecureHTTP,
    cookieSessionSecret: config.cookieSessionSecret,
    cookieSessionMaxAge: config.cookieSessionMaxAgeMs,
    cookieSessionStore: store,
  })
);

const server = app.listen(config.port, () => {
  console.log(`Parse Dashboard ${config.version} listening on port ${config.port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    // Connections still open after a few seconds are cut.
    setTimeout(() => process.exit(0), 5000).unref();
  });
}

#!/usr/bin/env node
// The e2e tests' headless browser: the system Chromium (Debian's /usr/bin/chromium) driven
// with puppeteer-core, which never downloads a browser. One JSON command per line on stdin,
// one JSON reply per line on stdout: {"ok":true,...} or {"ok":false,"error":"..."}.
// Commands run one at a time in the order they arrive. Diagnostics go to stderr, never a
// password: commands are logged with their `password` and `value` fields masked.
//
//   node dashboard.js [--chromium PATH] [--ignore-https-errors] [--allow-origin ORIGIN]...
//                     [--viewport WxH] [--timeout-ms N]
//
// --allow-origin (repeatable): the page may reach only these origins (scheme://host:port);
// every other request (Google Fonts, anything on the Internet) is aborted at once and shows
// in `requests` as failed "blocked", so a machine without Internet access never waits on it.
//
// Commands ({"cmd": NAME, ...arguments}):
//   goto {url}                      -> {url, status}
//   login {url, user, password}     url: the dashboard's base (its login page is <url>/login)
//                                   -> {loggedIn, url, message}   message: the login error shown
//   openClass {base, app?, className} -> {url, rows, columns}    app: the first app if omitted
//   text {selector?}                -> {text}   the grid's visible text, else the page's
//   addRow {}                       -> {rows}   the data browser's "Add a row"
//   editCell {row, column, value}   -> {text}   row: 0-based index in the grid; column: name
//   cellText {row, column}          -> {text}
//   saveRow {}                      -> {saved, row, columns, notice}  the added row's "Add" button
//   eval {js}                       -> {value}  an expression evaluated in the page
//   screenshot {path, fullPage?}    -> {path}
//   cookies {}                      -> {cookies: [{name, domain, path, httpOnly, sameSite, session, expires, valueLength}]}
//   reload {}                       -> {url, status}
//   requests {}                     -> {requests: [{method, url, status, body? | failure}]} since the
//                                   last call; body: an error's JSON (status >= 400), 500 chars at most
//   inflight {}                     -> {inflight: [...]} requests not answered yet
//   console {}                      -> {messages: [...]} console errors/warnings and page errors since the last call
//   memory {}                       -> {processes, rssKb, pssKb} Chromium's whole process tree
//   quit {}                         -> {} then the driver exits
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const puppeteer = require('puppeteer-core');

function parseArgs(argv) {
  const opts = {
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
    ignoreHttpsErrors: false,
    allowOrigins: [],
    viewport: { width: 1400, height: 900 },
    timeoutMs: 30000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--chromium') opts.chromium = next();
    else if (a === '--ignore-https-errors') opts.ignoreHttpsErrors = true;
    else if (a === '--allow-origin') opts.allowOrigins.push(new URL(next()).origin);
    else if (a === '--viewport') {
      const [w, h] = next().split('x').map(Number);
      opts.viewport = { width: w, height: h };
    } else if (a === '--timeout-ms') opts.timeoutMs = Number(next());
    else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...args) => console.error('[dashboard.js]', ...args);

function masked(cmd) {
  const copy = { ...cmd };
  for (const k of ['password', 'value']) if (k in copy) copy[k] = '***';
  return JSON.stringify(copy);
}

let browser;
let page;
let requests = [];
let messages = [];
const inflight = new Map();
let generation = 0;

async function launch() {
  if (!fs.existsSync(opts.chromium)) throw new Error(`no browser at ${opts.chromium} (scripts/prereqs.sh installs Debian's chromium)`);
  browser = await puppeteer.launch({
    executablePath: opts.chromium,
    headless: true,
    acceptInsecureCerts: opts.ignoreHttpsErrors,
    // Root in a container: no sandbox. No GPU, no first-run or background network chatter.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--metrics-recording-only',
      '--mute-audio',
      ...(opts.ignoreHttpsErrors ? ['--ignore-certificate-errors'] : []),
    ],
    defaultViewport: opts.viewport,
    protocolTimeout: opts.timeoutMs * 2,
  });
  page = (await browser.pages())[0] || (await browser.newPage());
  page.setDefaultTimeout(opts.timeoutMs);
  page.setDefaultNavigationTimeout(opts.timeoutMs);
  if (opts.allowOrigins.length) {
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      let origin = null;
      try { origin = new URL(req.url()).origin; } catch { /* data: and the like */ }
      const local = req.url().startsWith('data:') || req.url().startsWith('blob:');
      if (local || opts.allowOrigins.includes(origin)) req.continue().catch(() => {});
      else req.abort('blockedbyclient').catch(() => {});
    });
  }
  // Requests in flight, for `settle`. A navigation abandons the old document's requests
  // without a finished or failed event (seen with the dashboard's POST /serverInfo), so a
  // main-frame navigation forgets those started before it.
  page.on('request', (req) => inflight.set(req, generation));
  page.on('framenavigated', (frame) => {
    if (frame !== page.mainFrame()) return;
    generation++;
    for (const [req, gen] of inflight) if (gen < generation && !req.isNavigationRequest()) inflight.delete(req);
  });
  page.on('requestfinished', async (req) => {
    const res = req.response();
    const entry = { method: req.method(), url: req.url(), status: res ? res.status() : null };
    requests.push(entry);
    // An error's JSON body (parse-server's {"code":119,"error":"Permission denied"}), kept
    // short; success bodies (objects, the dashboard's config with its keys) are never kept.
    if (res && res.status() >= 400 && /json/.test(res.headers()['content-type'] || '')) {
      entry.body = await res.text().then((t) => t.slice(0, 500)).catch(() => null);
    }
    inflight.delete(req);
  });
  page.on('requestfailed', (req) => {
    inflight.delete(req);
    const f = req.failure();
    const reason = f && f.errorText.startsWith('net::ERR_BLOCKED_BY_CLIENT') ? 'blocked' : (f ? f.errorText : 'failed');
    requests.push({ method: req.method(), url: req.url(), failure: reason });
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warn') messages.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => messages.push(`pageerror: ${err.message}`));
}

// The data browser's grid (parse-dashboard 9.2.0, src/dashboard/Data/Browser): its class
// names are hashed CSS modules (e.g. "bsNKqGSdFv7hHhd8VtwI"), so nothing here names one. What
// is stable: the grid is `#browser-table`; its first child is the header, whose column
// names are the first child of each draggable header cell (`[draggable="true"]`); every data
// row (and a row being added) is a div whose first child is a <span> holding the row's
// checkbox, followed by one <span> per column in the header's order. A row being added sits
// at the top, inside a wrapper that also holds its "Add" and "Cancel" buttons; its empty cells
// read "(undefined)".
const GRID = () => {
  const table = document.getElementById('browser-table');
  if (!table) return null;
  const header = table.firstElementChild;
  const columns = [...header.querySelectorAll('[draggable="true"]')].map((h) => h.firstElementChild.textContent.trim());
  const rows = [...table.querySelectorAll('span > input[type="checkbox"]')]
    .map((box) => box.parentElement.parentElement)
    .filter((row) => row.firstElementChild === row.querySelector('span'));
  return { table, columns, rows };
};

async function grid() {
  return page.evaluate(`(() => {
    const g = (${GRID.toString()})();
    if (!g) return null;
    return { columns: g.columns, rows: g.rows.map((r) => [...r.children].slice(1).map((c) => c.innerText)) };
  })()`);
}

// The <span> of one cell, as an element handle.
async function cell(row, column) {
  const h = await page.evaluateHandle(`(() => {
    const g = (${GRID.toString()})();
    if (!g) return 'no data browser grid (#browser-table) on the page';
    const c = g.columns.indexOf(${JSON.stringify(column)});
    if (c < 0) return 'no column ' + ${JSON.stringify(column)} + ' (columns: ' + g.columns.join(', ') + ')';
    const r = g.rows[${Number(row)}];
    if (!r) return 'no row ' + ${Number(row)} + ' (' + g.rows.length + ' rows)';
    return r.children[c + 1];
  })()`);
  const v = await h.jsonValue().catch(() => null);
  if (typeof v === 'string') throw new Error(v);
  return h.asElement();
}

// The first element matching `selector` whose trimmed text is `text`, clicked.
async function clickByText(selector, text, within) {
  const h = await page.evaluateHandle(
    (selector, text, within) => {
      const root = within ? document.querySelector(within) : document;
      return [...(root ? root.querySelectorAll(selector) : [])].find((e) => e.textContent.trim() === text) || null;
    },
    selector, text, within || null,
  );
  const el = h.asElement();
  if (!el) throw new Error(`no ${selector} reading ${JSON.stringify(text)}`);
  await el.click();
}

// Waits until the page has had no request in flight for half a second (the dashboard's
// schema, query and count requests to parse-server), at most the command timeout.
async function settle() {
  const deadline = Date.now() + opts.timeoutMs;
  let idleSince = inflight.size ? null : Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (inflight.size) idleSince = null;
    else if (idleSince === null) idleSince = Date.now();
    else if (Date.now() - idleSince >= 500) return;
  }
  throw new Error(`requests still in flight after ${opts.timeoutMs} ms: ${[...inflight.keys()].map((r) => r.url()).join(', ')}`);
}

// The dashboard's notification (a toast: "Fruit with id '...' created", "Permission
// denied" and the like), if one is shown. Its class names are hashed: it is the last
// fixed-position element with text and no link.
async function notice() {
  return page.evaluate(() => {
    const fixed = [...document.querySelectorAll('body *')].filter((e) => {
      const st = getComputedStyle(e);
      // Not the sidebar (fixed too, full of links).
      return st.position === 'fixed' && e.innerText && e.innerText.trim() && !e.querySelector('a[href]');
    });
    const last = fixed[fixed.length - 1];
    return last ? last.innerText.trim() : null;
  });
}

function need(cmd, ...keys) {
  for (const k of keys) if (cmd[k] === undefined || cmd[k] === null || cmd[k] === '') throw new Error(`${cmd.cmd}: missing ${k}`);
}

function join(base, rel) {
  return base.replace(/\/+$/, '') + '/' + rel.replace(/^\/+/, '');
}

async function goto(url) {
  const res = await page.goto(url, { waitUntil: 'domcontentloaded' });
  return { url: page.url(), status: res ? res.status() : null };
}

const commands = {
  async goto(cmd) {
    need(cmd, 'url');
    return goto(cmd.url);
  },

  // The login page (<url>/login, parse-dashboard's own form: username, password, a hidden
  // _csrf field bound to the session, submit "Log In"): a POST /login answered by a redirect
  // to <url>/apps on success, back to <url>/login with a flash message on failure.
  async login(cmd) {
    need(cmd, 'url', 'user', 'password');
    await goto(join(cmd.url, 'login'));
    if (!page.url().replace(/[?#].*$/, '').endsWith('/login')) {
      // Already logged in: the login page redirects to the apps.
      return { loggedIn: true, url: page.url(), message: null };
    }
    await page.waitForSelector('form input[name="username"]');
    await page.type('form input[name="username"]', cmd.user);
    await page.type('form input[name="password"]', cmd.password);
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'domcontentloaded' }),
      page.click('form input[type="submit"]'),
    ]);
    const url = page.url();
    const onLogin = new URL(url).pathname.replace(/\/+$/, '').endsWith('/login');
    let message = null;
    if (onLogin) {
      // The flash message: a hidden #login_errors div the login bundle shows in the form.
      // Its text is JSON ({"text":"Invalid username or password"}).
      message = await page.evaluate(() => {
        const el = document.getElementById('login_errors');
        return el ? el.textContent.trim() : null;
      });
      try { message = JSON.parse(message).text || message; } catch { /* plain text */ }
    }
    return { loggedIn: !onLogin, url, message };
  },

  // The data browser of a class: <base>/apps/<app>/browser/<className>, waited for until the
  // grid shows the class's columns and the page's requests (schema, query, count) are done.
  async openClass(cmd) {
    need(cmd, 'base', 'className');
    let app = cmd.app;
    if (!app) {
      // The first app the logged-in user may see, as the dashboard names it in its URLs.
      const config = await page.evaluate(async (url) => {
        const res = await fetch(url, { credentials: 'same-origin' });
        return { status: res.status, body: res.ok ? await res.json() : null };
      }, join(cmd.base, 'parse-dashboard-config.json'));
      if (!config.body || !config.body.apps || !config.body.apps.length) {
        throw new Error(`parse-dashboard-config.json answered ${config.status} with no app (logged in?)`);
      }
      const first = config.body.apps[0];
      app = first.appNameForURL || first.appName || first.appId;
    }
    const url = join(cmd.base, `apps/${encodeURIComponent(app)}/browser/${encodeURIComponent(cmd.className)}`);
    await goto(url);
    await page.waitForFunction(`(() => {
      const g = (${GRID.toString()})();
      return g && g.columns.includes('objectId');
    })()`);
    await settle();
    const g = await grid();
    return { url: page.url(), columns: g.columns, rows: g.rows.length };
  },

  // Adds a row the way a user does: the toolbar's "Add Row". The new row is not saved yet:
  // it sits at the top (row 0) with "Add" and "Cancel" buttons; `editCell` fills it and
  // `saveRow` clicks its "Add".
  async addRow() {
    const before = (await grid()).rows.length;
    await clickByText('a', 'Add Row');
    await page.waitForFunction(`(() => {
      const g = (${GRID.toString()})();
      return g && g.rows.length === ${before + 1};
    })()`);
    return { rows: before + 1 };
  },

  // Types `value` into a cell: a double click opens the cell's editor (an input or textarea
  // that takes the focus), its text is replaced and Enter commits it. On a saved row the
  // dashboard then PUTs the object to parse-server; this waits for the requests to finish.
  async editCell(cmd) {
    need(cmd, 'column');
    if (cmd.value === undefined || cmd.value === null) throw new Error('editCell: missing value');
    const el = await cell(cmd.row || 0, cmd.column);
    await el.evaluate((e) => e.scrollIntoView({ block: 'center', inline: 'center' }));
    await el.click({ count: 2 });
    await page.waitForFunction(() => {
      const a = document.activeElement;
      return a && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA') && a.type !== 'checkbox';
    }, { timeout: 5000 }).catch(() => { throw new Error(`no editor opened on ${cmd.column} of row ${cmd.row || 0}`); });
    await page.keyboard.down('Control');
    await page.keyboard.press('KeyA');
    await page.keyboard.up('Control');
    await page.keyboard.press('Backspace');
    await page.keyboard.type(String(cmd.value));
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => {
      const a = document.activeElement;
      return !a || !(a.tagName === 'INPUT' || a.tagName === 'TEXTAREA') || a.type === 'checkbox';
    }, { timeout: 5000 }).catch(() => { throw new Error('the editor did not close on Enter'); });
    await settle();
    const text = await (await cell(cmd.row || 0, cmd.column)).evaluate((e) => e.innerText);
    return { text };
  },

  async cellText(cmd) {
    need(cmd, 'column');
    const text = await (await cell(cmd.row || 0, cmd.column)).evaluate((e) => e.innerText);
    return { text };
  },

  // Saves the row `addRow` added: its "Add" button. Waits until the row is a saved one (no
  // "Cancel" left in the grid) or the dashboard shows an error; returns the grid's first row.
  async saveRow() {
    await clickByText('button', 'Add', '#browser-table');
    await settle();
    const pending = await page.evaluate(() =>
      [...document.querySelectorAll('#browser-table button')].some((b) => b.textContent.trim() === 'Cancel'));
    const g = await grid();
    return { saved: !pending, row: g.rows[0] || null, columns: g.columns, notice: await notice() };
  },

  async eval(cmd) {
    need(cmd, 'js');
    return { value: await page.evaluate(cmd.js) };
  },

  // The grid's text (header and rows, tab-separated) when a data browser is shown and no
  // selector is given; else the selected element's (or the page's) visible text.
  async text(cmd) {
    const sel = cmd.selector || null;
    if (!sel) {
      const g = await grid();
      if (g) {
        const lines = [g.columns.join('\t'), ...g.rows.map((r) => r.join('\t'))];
        return { text: lines.join('\n'), columns: g.columns, rows: g.rows, notice: await notice() };
      }
    }
    const text = await page.evaluate((sel) => {
      const el = sel ? document.querySelector(sel) : document.body;
      return el ? el.innerText : null;
    }, sel);
    if (text === null) throw new Error(`no element matches ${sel}`);
    return { text };
  },

  async screenshot(cmd) {
    need(cmd, 'path');
    fs.mkdirSync(path.dirname(path.resolve(cmd.path)), { recursive: true });
    await page.screenshot({ path: cmd.path, fullPage: !!cmd.fullPage });
    return { path: path.resolve(cmd.path) };
  },

  async cookies() {
    const cookies = (await page.cookies()).map((c) => ({
      name: c.name,
      domain: c.domain,
      path: c.path,
      httpOnly: c.httpOnly,
      secure: c.secure,
      sameSite: c.sameSite || null,
      session: c.session,
      expires: c.expires,
      valueLength: c.value.length,
    }));
    return { cookies };
  },

  async reload() {
    const res = await page.reload({ waitUntil: 'domcontentloaded' });
    return { url: page.url(), status: res ? res.status() : null };
  },

  async requests() {
    const out = requests;
    requests = [];
    return { requests: out };
  },

  async console() {
    const out = messages;
    messages = [];
    return { messages: out };
  },

  async memory() {
    return chromiumMemory(browser.process().pid);
  },

  async inflight() {
    return { inflight: [...inflight.keys()].map((r) => `${r.method()} ${r.url()} ${r.resourceType()}`) };
  },

  async quit() {
    return {};
  },
};

// Chromium's whole process tree (the browser, its zygotes, renderers, GPU and utility
// processes): the sum of VmRSS and of Pss (smaps_rollup) over every descendant.
function chromiumMemory(root) {
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const tree = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop();
    tree.push(p);
    todo.push(...(children.get(p) || []));
  }
  let rssKb = 0;
  let pssKb = 0;
  for (const p of tree) {
    try {
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      const m = status.match(/^VmRSS:\s+(\d+) kB/m);
      if (m) rssKb += Number(m[1]);
      const rollup = fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      const q = rollup.match(/^Pss:\s+(\d+) kB/m);
      if (q) pssKb += Number(q[1]);
    } catch { /* gone */ }
  }
  return { processes: tree.length, rssKb, pssKb };
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  try {
    await launch();
  } catch (e) {
    reply({ ok: false, error: `launch: ${e.message}` });
    process.exit(1);
  }
  // pid: Chromium's main process, the leader of its own process group (puppeteer starts
  // it detached), for a caller that must be sure it goes.
  reply({ ok: true, ready: true, version: await browser.version(), pid: browser.process().pid });
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      reply({ ok: false, error: `not JSON: ${e.message}` });
      continue;
    }
    log('command', masked(cmd));
    const fn = commands[cmd.cmd];
    if (!fn) {
      reply({ ok: false, error: `unknown command ${JSON.stringify(cmd.cmd)}` });
      continue;
    }
    try {
      const out = await fn(cmd);
      reply({ ok: true, ...out });
    } catch (e) {
      reply({ ok: false, error: `${cmd.cmd}: ${e.message}` });
    }
    if (cmd.cmd === 'quit') break;
  }
  await browser.close().catch(() => {});
  process.exit(0);
}

// Chromium must not outlive the driver: closing it on every way out.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    const p = browser && browser.process();
    if (p) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    process.exit(1);
  });
}

main();

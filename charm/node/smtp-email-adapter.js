// parse-server mail adapter that sends through the SMTP server the charm's `smtp` relation
// gives (smtp-integrator). Installed by the Parse Server charm; loaded as
// {"module": "<this file>", "options": {...}} from parse-server's option file, the only place
// the SMTP password is written (0640 root:parse-server).
//
// parse-server's mail adapter interface (lib/Adapters/Email/MailAdapter.js) is one method,
// sendMail({to, subject, text}); parse-server builds the verification and password-reset
// mails itself, with links to its publicServerURL.
//
// nodemailer comes from the parse-server release that runs (options.releaseDir, installed
// from the charm's lockfile): this file lives outside any release.
//
// Options: host, port, transportSecurity (none | starttls | tls), rejectUnauthorized,
// caFile (the machine's CA store, trusted besides Node's own CAs), user and password (when
// the server wants SMTP AUTH), from, releaseDir, revision (the charm's digest of this file,
// so that a new adapter restarts the service).
'use strict';

const fs = require('fs');
const path = require('path');
const tls = require('tls');
const { createRequire } = require('module');

const SECURITY = ['none', 'starttls', 'tls'];

function required(options, key) {
  const value = options[key];
  if (value === undefined || value === null || value === '') {
    throw new Error(`smtp-email-adapter needs options.${key}`);
  }
  return value;
}

function createSmtpEmailAdapter(options = {}) {
  const releaseDir = required(options, 'releaseDir');
  const host = required(options, 'host');
  const port = Number(required(options, 'port'));
  const from = required(options, 'from');
  const security = options.transportSecurity || 'none';
  if (!SECURITY.includes(security)) {
    throw new Error(`smtp-email-adapter: transportSecurity must be one of ${SECURITY.join(', ')}`);
  }
  const nodemailer = createRequire(path.join(releaseDir, 'package.json'))('nodemailer');

  // Node's own CAs and the machine's store, read at each mail so that a CA installed on the
  // machine later is trusted without a restart.
  function trustedCas() {
    const cas = [...tls.rootCertificates];
    if (options.caFile) {
      try {
        cas.push(fs.readFileSync(options.caFile, 'utf8'));
      } catch (e) {
        if (e.code !== 'ENOENT') {
          throw e;
        }
      }
    }
    return cas;
  }

  function transport() {
    const settings = {
      host,
      port,
      secure: security === 'tls',
      requireTLS: security === 'starttls',
      ignoreTLS: false,
      connectionTimeout: 30000,
      greetingTimeout: 30000,
      socketTimeout: 60000,
      tls: {
        rejectUnauthorized: options.rejectUnauthorized !== false,
        ca: trustedCas(),
      },
    };
    if (options.user) {
      settings.auth = { user: options.user, pass: options.password || '' };
    }
    return nodemailer.createTransport(settings);
  }

  return {
    // parse-server 9.10.0 calls sendMail without awaiting it (UserController's
    // sendVerificationEmail and sendPasswordResetEmail), and its uncaughtException handler
    // exits the process: a rejection here would take a worker down with the SMTP server.
    // A mail that cannot be sent is logged (the server's reason, never the recipient or the
    // credentials) and the promise resolves to false.
    async sendMail({ to, subject, text, html }) {
      const mail = { from, to, subject, text };
      if (html) {
        mail.html = html;
      }
      let t;
      try {
        t = transport();
        await t.sendMail(mail);
        return true;
      } catch (e) {
        const why = String((e && e.message) || e).split('\n')[0].slice(0, 300);
        console.error(`smtp-email-adapter: a mail was not sent through ${host}:${port}: ${why}`);
        return false;
      } finally {
        if (t) {
          t.close();
        }
      }
    },
  };
}

module.exports = createSmtpEmailAdapter;
module.exports.default = createSmtpEmailAdapter;

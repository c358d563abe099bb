// Run by the Parse Server charm before a Cloud Code revision reaches the service: loads the
// code as parse-server would (the global `Parse` with `Parse.Cloud`, then `require` or, for
// ES modules, `import`) in a process of its own, run as the service's user with an empty
// environment and none of the service's options, keys or credentials. A load that fails
// prints one line (the error's name and message, and for a syntax error its line in the
// code) and exits 1; the charm shows that line in `juju status` and the service keeps its
// current code.
//
// usage: node cloud-check.js <parse-server release dir> <main.js> <commonjs|module>
'use strict';

const path = require('path');
const { createRequire } = require('module');
const { pathToFileURL } = require('url');

const [release, main, kind] = process.argv.slice(2);

function firstLine(text) {
  return String(text).split('\n').find((l) => l.trim() !== '') || '';
}

function describe(e) {
  if (!(e instanceof Error)) {
    return `threw ${firstLine(typeof e === 'string' ? e : typeof e)}`;
  }
  let line = `${e.name}: ${firstLine(e.message)}`;
  if (e.code) {
    line += ` (${e.code})`;
  }
  if (e instanceof SyntaxError && typeof e.stack === 'string') {
    // V8 puts the file and line of a syntax error first in its stack: "<file>:<line>".
    const at = firstLine(e.stack);
    const m = /^(.*):(\d+)$/.exec(at);
    if (m && m[1].startsWith(path.dirname(main))) {
      line += ` at ${path.relative(path.dirname(main), m[1])}:${m[2]}`;
    }
  }
  return line;
}

async function load() {
  // parse-server's own modules, from the release the service runs.
  const fromRelease = createRequire(path.join(release, 'node_modules', 'parse-server', 'package.json'));
  const Parse = fromRelease('parse/node').Parse;
  Parse.initialize('cloud-code-check');
  Parse.Cloud = fromRelease('./lib/cloud-code/Parse.Cloud');
  global.Parse = Parse;
  if (kind === 'module') {
    await import(pathToFileURL(main).href);
  } else {
    require(main);
  }
}

load().then(
  () => process.exit(0),
  (e) => {
    process.stdout.write(describe(e) + '\n');
    process.exit(1);
  }
);

// Loaded into every parse-server process by the Parse Server charm (node --require): on
// SIGUSR2 the process writes its V8 heap statistics to the service's state directory, for
// the charm's memory-report action. Nothing else changes.
'use strict';

const fs = require('fs');
const v8 = require('v8');
const path = require('path');

const DIR = process.env.PARSE_SERVER_CHARM_STATE_DIR || '/var/lib/parse-server';

process.on('SIGUSR2', () => {
  const h = v8.getHeapStatistics();
  const report = {
    pid: process.pid,
    used_heap_size: h.used_heap_size,
    total_heap_size: h.total_heap_size,
    heap_size_limit: h.heap_size_limit,
  };
  const file = path.join(DIR, `heap-${process.pid}.json`);
  try {
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(report));
    fs.renameSync(`${file}.tmp`, file);
  } catch {
    /* the report is best effort */
  }
});

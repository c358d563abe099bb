// Runs the Cloud Code jobs scheduled in `_JobSchedule` when they are due: parse-server stores
// schedules (the Dashboard writes them) but runs none. The Parse Server charm starts this
// once a minute (parse-server-jobs.timer), on the leader unit only, as the service's user.
//
// When a schedule is due (fields as the Dashboard writes them; times in UTC):
// - `startAfter` (ISO date): nothing is due before it.
// - No `repeatMinutes` (or 0): one run, due at `startAfter`.
// - `repeatMinutes` R with `timeOfDay` "HH:MM[:SS[.sss]]Z": on each day `daysOfWeek` allows
//   (7 flags, Sunday first; absent: every day), due at that time of day and every R minutes
//   after it until the day ends (R = 1440: once a day).
// - `repeatMinutes` R without `timeOfDay`: due at `startAfter` and every R minutes after it,
//   on the days `daysOfWeek` allows.
// Only the latest due time is run (a unit that was down does not run the missed ones one
// after the other), and only if it is later than the schedule's `lastRun`.
//
// Exactly once per due time, across units and reboots: the run is `POST <mount>/jobs/<name>`
// with `X-Parse-Request-Id: parse-server-charm-job:<schedule id>:<due time>`, and
// parse-server's idempotency (enabled by the charm for `jobs/.*`) stores that id in the
// database with a unique index before the job starts: a second request with it (another
// unit that still thinks it leads, a rerun after a reboot) is refused as a duplicate. After
// a run, the schedule's `lastRun` is set to the due time (milliseconds since the epoch).
//
// A schedule whose fields cannot be read is skipped, and why is written to the state file,
// which the charm shows in `juju status`. No key or credential is ever written or logged.
//
// usage: node job-scheduler.js <parse-server option file> <state file>
'use strict';

const fs = require('fs');

const DAY_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60 * 1000;

/** Why `s` cannot be scheduled, or null. */
function invalid(s) {
  if (typeof s.jobName !== 'string' || s.jobName === '') {
    return 'jobName: missing';
  }
  if (s.startAfter !== undefined && s.startAfter !== null && isNaN(Date.parse(s.startAfter))) {
    return 'startAfter: not a date';
  }
  const r = s.repeatMinutes;
  if (r !== undefined && r !== null && !(Number.isInteger(r) && r >= 0 && r <= 525600)) {
    return 'repeatMinutes: not a whole number of minutes (0 to 525600)';
  }
  if (s.timeOfDay !== undefined && s.timeOfDay !== null && timeOfDayMs(s.timeOfDay) === null) {
    return 'timeOfDay: not HH:MM:SS.sssZ';
  }
  if (s.daysOfWeek !== undefined && s.daysOfWeek !== null) {
    if (!Array.isArray(s.daysOfWeek) || s.daysOfWeek.length !== 7) {
      return 'daysOfWeek: not 7 flags (Sunday first)';
    }
  }
  if (s.params !== undefined && s.params !== null && s.params !== '') {
    let p;
    try {
      p = JSON.parse(s.params);
    } catch (e) {
      return 'params: not JSON';
    }
    if (typeof p !== 'object' || p === null || Array.isArray(p)) {
      return 'params: not a JSON object';
    }
  }
  return null;
}

/** "HH:MM[:SS[.sss]][Z]" as milliseconds after midnight UTC, or null. */
function timeOfDayMs(t) {
  const m = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?Z?$/.exec(String(t));
  if (!m) {
    return null;
  }
  const [h, min, sec, ms] = [m[1], m[2], m[3] || '0', (m[4] || '0').padEnd(3, '0')].map(Number);
  if (h > 23 || min > 59 || sec > 59) {
    return null;
  }
  return ((h * 60 + min) * 60 + sec) * 1000 + ms;
}

function dayAllowed(s, dayStartMs) {
  if (!Array.isArray(s.daysOfWeek)) {
    return true;
  }
  return Boolean(Number(s.daysOfWeek[new Date(dayStartMs).getUTCDay()]));
}

/** The latest time at or before `now` (ms) when `s` is due, or null. `s` must be valid. */
function latestDue(s, now) {
  const start = s.startAfter ? Date.parse(s.startAfter) : 0;
  if (now < start) {
    return null;
  }
  const every = (s.repeatMinutes || 0) * MINUTE_MS;
  if (every === 0) {
    return start;
  }
  const tod = s.timeOfDay ? timeOfDayMs(s.timeOfDay) : null;
  // Look back day by day (a week covers any daysOfWeek) for the latest slot.
  for (let back = 0; back <= 7; back++) {
    const dayStart = Math.floor(now / DAY_MS) * DAY_MS - back * DAY_MS;
    if (!dayAllowed(s, dayStart)) {
      continue;
    }
    const dayEnd = dayStart + DAY_MS;
    const anchor = tod !== null ? dayStart + tod : start;
    // The last slot anchor + k*every that is <= min(now, dayEnd - 1) and >= the day's start.
    const limit = Math.min(now, dayEnd - 1);
    if (limit < anchor) {
      continue;
    }
    const slot = anchor + Math.floor((limit - anchor) / every) * every;
    if (slot >= dayStart && slot >= start) {
      return slot;
    }
  }
  return null;
}

async function call(base, headers, method, path, body, extra) {
  const res = await fetch(base + path, {
    method,
    headers: { ...headers, ...(extra || {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try {
    json = await res.json();
  } catch (e) {
    json = null;
  }
  return { status: res.status, json, headers: res.headers };
}

async function main() {
  const [optionFile, stateFile] = process.argv.slice(2);
  const o = JSON.parse(fs.readFileSync(optionFile, 'utf8'));
  const base = `http://127.0.0.1:${o.port}${o.mountPath}`;
  const headers = {
    'X-Parse-Application-Id': o.appId,
    'X-Parse-Master-Key': o.masterKey,
    'Content-Type': 'application/json',
  };
  const now = Date.now();
  const state = { checked: new Date(now).toISOString(), skipped: {}, ran: [], failed: {} };
  const list = await call(base, headers, 'GET', '/cloud_code/jobs');
  if (list.status !== 200 || !Array.isArray(list.json)) {
    state.failed['*'] = `listing the schedules: HTTP ${list.status} ${(list.json && list.json.error) || ''}`.trim();
  } else {
    for (const s of list.json) {
      const id = String(s.objectId);
      const why = invalid(s);
      if (why) {
        state.skipped[id] = why;
        continue;
      }
      const due = latestDue(s, now);
      if (due === null || (typeof s.lastRun === 'number' && s.lastRun >= due)) {
        continue;
      }
      const dueIso = new Date(due).toISOString();
      const params = s.params ? JSON.parse(s.params) : {};
      const run = await call(base, headers, 'POST', `/jobs/${encodeURIComponent(s.jobName)}`, params, {
        'X-Parse-Request-Id': `parse-server-charm-job:${id}:${dueIso}`,
      });
      if (run.status === 200) {
        const jobStatusId = run.headers.get('x-parse-job-status-id');
        console.log(`ran ${s.jobName} (schedule ${id}) for ${dueIso}: job status ${jobStatusId}`);
        state.ran.push({ schedule: id, job: s.jobName, due: dueIso, jobStatusId });
        const mark = await call(base, headers, 'PUT', `/cloud_code/jobs/${encodeURIComponent(id)}`, {
          // parse-server resets an absent startAfter to now: send it back unchanged.
          job_schedule: { lastRun: due, startAfter: s.startAfter },
        });
        if (mark.status !== 200) {
          console.log(`schedule ${id}: recording lastRun: HTTP ${mark.status}`);
        }
      } else if (run.json && run.json.code === 159) {
        console.log(`${s.jobName} (schedule ${id}) for ${dueIso}: already run`);
      } else {
        const why = `HTTP ${run.status} ${(run.json && run.json.error) || ''}`.trim();
        console.log(`${s.jobName} (schedule ${id}) for ${dueIso}: not started: ${why}`);
        state.failed[id] = why;
      }
    }
  }
  fs.writeFileSync(stateFile + '.new', JSON.stringify(state));
  fs.renameSync(stateFile + '.new', stateFile);
}

module.exports = { invalid, latestDue, timeOfDayMs };

if (require.main === module) {
  main().catch((e) => {
    console.log(`job scheduler: ${e && e.message ? e.message.split('\n')[0] : e}`);
    process.exit(1);
  });
}

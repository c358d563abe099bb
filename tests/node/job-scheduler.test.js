// The job scheduler's reading of `_JobSchedule` (charm/node/job-scheduler.js): when a
// schedule is due and which schedules are refused. Run by `cargo test` (tests/charm_files.rs)
// with `node --test`.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { invalid, latestDue, timeOfDayMs } = require('../../charm/node/job-scheduler.js');

const at = (iso) => Date.parse(iso);
const due = (s, now) => {
  const d = latestDue(s, at(now));
  return d === null ? null : new Date(d).toISOString();
};

test('a one-off schedule is due at startAfter and stays due', () => {
  const s = { jobName: 'j', startAfter: '2026-12-06T10:00:00.000Z' };
  assert.strictEqual(due(s, '2026-12-06T09:59:59.000Z'), null);
  assert.strictEqual(due(s, '2026-12-06T10:00:00.000Z'), '2026-12-06T10:00:00.000Z');
  assert.strictEqual(due(s, '2026-12-07T03:00:00.000Z'), '2026-12-06T10:00:00.000Z');
});

test('repeatMinutes without timeOfDay counts from startAfter', () => {
  const s = { jobName: 'j', startAfter: '2026-12-06T10:00:30.000Z', repeatMinutes: 1 };
  assert.strictEqual(due(s, '2026-12-06T10:00:29.000Z'), null);
  assert.strictEqual(due(s, '2026-12-06T10:00:30.000Z'), '2026-12-06T10:00:30.000Z');
  assert.strictEqual(due(s, '2026-12-06T10:01:29.999Z'), '2026-12-06T10:00:30.000Z');
  assert.strictEqual(due(s, '2026-12-06T10:05:31.000Z'), '2026-12-06T10:05:30.000Z');
});

test('timeOfDay with repeatMinutes repeats from that time until the day ends', () => {
  const s = {
    jobName: 'j',
    startAfter: '2026-12-01T00:00:00.000Z',
    timeOfDay: '22:00:00.000Z',
    repeatMinutes: 60,
  };
  assert.strictEqual(due(s, '2026-12-06T23:30:00.000Z'), '2026-12-06T23:00:00.000Z');
  // After midnight and before 22:00, the last slot is yesterday's 23:00.
  assert.strictEqual(due(s, '2026-12-07T09:00:00.000Z'), '2026-12-06T23:00:00.000Z');
});

test('daily at a time of day, on the days daysOfWeek allows (Sunday first)', () => {
  // 2026-12-06 is a Sunday.
  const s = {
    jobName: 'j',
    startAfter: '2026-11-01T00:00:00.000Z',
    timeOfDay: '12:30:00.000Z',
    repeatMinutes: 1440,
    daysOfWeek: [0, 1, 0, 0, 0, 0, 0],
  };
  assert.strictEqual(due(s, '2026-12-08T13:00:00.000Z'), '2026-12-07T12:30:00.000Z');
  assert.strictEqual(due(s, '2026-12-07T12:29:00.000Z'), '2026-11-30T12:30:00.000Z');
  const every = { ...s, daysOfWeek: [1, 1, 1, 1, 1, 1, 1] };
  assert.strictEqual(due(every, '2026-12-08T13:00:00.000Z'), '2026-12-08T12:30:00.000Z');
});

test('nothing is due before startAfter, whatever the time of day', () => {
  const s = { jobName: 'j', startAfter: '2026-12-06T12:00:00.000Z', timeOfDay: '08:00:00.000Z', repeatMinutes: 1440 };
  assert.strictEqual(due(s, '2026-12-06T13:00:00.000Z'), null);
  assert.strictEqual(due(s, '2026-12-07T08:00:00.000Z'), '2026-12-07T08:00:00.000Z');
});

test('nonsense fields are named', () => {
  assert.strictEqual(invalid({ jobName: 'j' }), null);
  assert.match(invalid({}), /^jobName/);
  assert.match(invalid({ jobName: 'j', startAfter: 'soon' }), /^startAfter/);
  assert.match(invalid({ jobName: 'j', repeatMinutes: -5 }), /^repeatMinutes/);
  assert.match(invalid({ jobName: 'j', repeatMinutes: 1.5 }), /^repeatMinutes/);
  assert.match(invalid({ jobName: 'j', timeOfDay: '25:00:00.000Z' }), /^timeOfDay/);
  assert.match(invalid({ jobName: 'j', daysOfWeek: [1, 1] }), /^daysOfWeek/);
  assert.match(invalid({ jobName: 'j', params: '{oops' }), /^params: not JSON/);
  assert.match(invalid({ jobName: 'j', params: '[1]' }), /^params: not a JSON object/);
  assert.strictEqual(timeOfDayMs('00:01:02.5Z'), 62500);
});

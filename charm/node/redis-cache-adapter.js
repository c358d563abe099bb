// parse-server cache adapter on the Redis every instance shares (the charm's `redis-url` or
// `valkey` relation). Installed by the Parse Server charm; loaded as
// {"module": "<this file>", "options": {...}} from parse-server's option file.
//
// It is parse-server's own RedisCacheAdapter (from the release that runs, options.releaseDir)
// with two differences that keep a unit serving while Redis is unreachable:
// - its client runs with node-redis's offline queue off: a command fails at once instead of
//   waiting for Redis to come back, so a read is a cache miss (the adapter's `get` answers
//   nothing on an error) and parse-server asks the database, instead of holding every
//   request that reads the cache (a session lookup) until Redis answers again;
// - a write that fails (`put`, `del`, `clear`) is logged, never rejected: parse-server does
//   not wait for these, and an unhandled rejection ends a Node process.
//
// Options: url (with the credentials), socket (node-redis socket options: the provider's TLS
// CA), ttl (ms, optional), releaseDir, revision (the charm's digest of this file, so that a
// new adapter restarts the service).
'use strict';

const path = require('path');

const ADAPTER = 'node_modules/parse-server/lib/Adapters/Cache/RedisCacheAdapter.js';

class SharedRedisCache {
  constructor(options) {
    const { releaseDir, url, socket, ttl } = options || {};
    if (!releaseDir || !url) {
      throw new Error('redis-cache-adapter needs options.releaseDir and options.url');
    }
    const { RedisCacheAdapter } = require(path.join(releaseDir, ADAPTER));
    const client = { url, disableOfflineQueue: true };
    if (socket) {
      client.socket = socket;
    }
    this.inner = new RedisCacheAdapter(client, ttl);
  }

  connect() {
    return this.inner.connect();
  }

  handleShutdown() {
    return this.inner.handleShutdown();
  }

  get(key) {
    return this.inner.get(key);
  }

  put(key, value, ttl) {
    return this.quietly('put', () => this.inner.put(key, value, ttl));
  }

  del(key) {
    return this.quietly('del', () => this.inner.del(key));
  }

  clear() {
    return this.quietly('clear', () => this.inner.clear());
  }

  async quietly(what, run) {
    try {
      return await run();
    } catch (e) {
      // The key may be a session token: only the operation and the client's reason.
      console.error(`redis-cache-adapter: ${what} failed: ${e && e.message}`);
      return undefined;
    }
  }
}

module.exports = SharedRedisCache;

// parse-server files adapter that keeps files in a table of the application's own PostgreSQL
// database, so that a file uploaded through one unit is served by every other one.
// parse-server's default adapter (GridFS) needs MongoDB, and its local-disk adapter is not
// shared between units. Installed by the Parse Server charm; loaded as
// {"module": "<this file>", "options": {"databaseURI": "postgresql://…"}}.
//
// pg-promise and parse-server's own PostgreSQL URI parser are loaded from the release that
// runs this process (require.main is parse-server's CLI), so that this adapter connects
// exactly as parse-server does: the same TLS options (`options.ssl`, as the charm gives
// parse-server's `databaseOptions.ssl`) and, the URI naming no
// user, the same credentials (PGUSER/PGPASSWORD, which the charm's service hooks set).
'use strict';

const TABLE = '"_CharmFiles"';

class PostgresFilesAdapter {
  constructor(options = {}) {
    if (!options.databaseURI) {
      throw new Error('PostgresFilesAdapter needs options.databaseURI');
    }
    const pgp = require.main.require('pg-promise')({ noWarnings: true });
    const parser = require.main.require(
      '../lib/Adapters/Storage/Postgres/PostgresConfigParser'
    );
    const connection = parser.getDatabaseOptionsFromURI(options.databaseURI);
    if (options.ssl) {
      // The same TLS options as parse-server's own client (its databaseOptions.ssl).
      connection.ssl = options.ssl;
    }
    this._db = pgp(connection);
    this._pgp = pgp;
    this._ready = null;
  }

  _table() {
    if (!this._ready) {
      this._ready = this._db
        .none(
          `CREATE TABLE IF NOT EXISTS ${TABLE} (` +
            'name text PRIMARY KEY, content_type text, data bytea NOT NULL, ' +
            'created_at timestamptz NOT NULL DEFAULT now())'
        )
        .catch(err => {
          // Two instances creating it at once: one wins, the other sees it exist.
          if (err && err.code === '23505') {
            return;
          }
          this._ready = null;
          throw err;
        });
    }
    return this._ready;
  }

  async createFile(filename, data, contentType) {
    await this._table();
    await this._db.none(
      `INSERT INTO ${TABLE} (name, content_type, data) VALUES ($1, $2, $3) ` +
        'ON CONFLICT (name) DO UPDATE SET content_type = EXCLUDED.content_type, data = EXCLUDED.data',
      [filename, contentType || null, Buffer.from(data)]
    );
  }

  async deleteFile(filename) {
    await this._table();
    const res = await this._db.result(`DELETE FROM ${TABLE} WHERE name = $1`, [filename]);
    if (res.rowCount === 0) {
      throw new Error('FileNotFound');
    }
  }

  async getFileData(filename) {
    await this._table();
    const row = await this._db.oneOrNone(`SELECT data FROM ${TABLE} WHERE name = $1`, [filename]);
    if (!row) {
      throw new Error('FileNotFound');
    }
    return row.data;
  }

  getFileLocation(config, filename) {
    const encoded = filename.split('/').map(encodeURIComponent).join('/');
    return config.mount + '/files/' + config.applicationId + '/' + encoded;
  }

  async handleShutdown() {
    this._pgp.end();
  }
}

module.exports = PostgresFilesAdapter;
module.exports.default = PostgresFilesAdapter;

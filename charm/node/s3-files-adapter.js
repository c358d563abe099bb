// parse-server files adapter for a unit with an s3 relation: new files go to the bucket
// (through @parse/s3-files-adapter, from the tree the charm installs beside the releases);
// a file the bucket does not hold is read from where files went before the relation (the
// database's store: GridFS on MongoDB, the charm's table on PostgreSQL), so no file an app
// stored becomes unreachable when the operator moves new files to S3. Installed by the
// Parse Server charm; loaded as {"module": "<this file>", "options": {...}} with:
//   adapterDir       the S3 adapter's npm tree
//   bucket, region, bucketPrefix, endpoint, forcePathStyle, accessKeyId, secretAccessKey
//   ca               PEM the store's certificate is verified with (else Node's CAs)
//   awsChecksums     false for stores other than AWS: checksums only where S3 requires them
//   fallback         {"gridfs": {databaseURI, databaseOptions, fileKey}} or
//                    {"postgres": {module, options}}
'use strict';

const https = require('https');
const path = require('path');

function notFound(err) {
  if (!err) {
    return false;
  }
  if (err.name === 'NoSuchBucket') {
    return false;
  }
  const status = err.$metadata && err.$metadata.httpStatusCode;
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || status === 404;
}

function fallbackStore(fallback) {
  if (fallback.gridfs) {
    const { GridFSBucketAdapter } = require.main.require(
      '../lib/Adapters/Files/GridFSBucketAdapter'
    );
    const g = fallback.gridfs;
    return new GridFSBucketAdapter(g.databaseURI, g.databaseOptions || {}, g.fileKey);
  }
  if (fallback.postgres) {
    const Adapter = require(fallback.postgres.module);
    return new (Adapter.default || Adapter)(fallback.postgres.options);
  }
  throw new Error('CharmS3FilesAdapter needs options.fallback (gridfs or postgres)');
}

// A byte range of a file held in memory, answered as parse-server's streaming adapters do.
function sendRange(data, req, res, contentType) {
  const total = data.length;
  const m = /^bytes=(\d*)-(\d*)$/.exec(req.get('Range') || '');
  let start = m && m[1] !== '' ? parseInt(m[1], 10) : NaN;
  let end = m && m[2] !== '' ? parseInt(m[2], 10) : NaN;
  if (isNaN(start) && !isNaN(end)) {
    start = Math.max(total - end, 0);
    end = total - 1;
  }
  if (isNaN(start)) {
    start = 0;
  }
  if (isNaN(end) || end >= total) {
    end = total - 1;
  }
  if (start > end || start >= total) {
    res.writeHead(416, { 'Content-Range': `bytes */${total}` });
    res.end();
    return;
  }
  res.writeHead(206, {
    'Accept-Ranges': 'bytes',
    'Content-Length': end - start + 1,
    'Content-Range': `bytes ${start}-${end}/${total}`,
    'Content-Type': contentType || 'application/octet-stream',
  });
  res.end(data.subarray(start, end + 1));
}

class CharmS3FilesAdapter {
  constructor(options = {}) {
    for (const k of ['adapterDir', 'bucket', 'accessKeyId', 'secretAccessKey', 'fallback']) {
      if (!options[k]) {
        throw new Error(`CharmS3FilesAdapter needs options.${k}`);
      }
    }
    const S3Adapter = require(path.join(
      options.adapterDir,
      'node_modules',
      '@parse',
      's3-files-adapter'
    ));
    const s3overrides = {
      forcePathStyle: !!options.forcePathStyle,
      credentials: {
        accessKeyId: options.accessKeyId,
        secretAccessKey: options.secretAccessKey,
      },
    };
    if (options.endpoint) {
      s3overrides.endpoint = options.endpoint;
    }
    if (options.ca) {
      s3overrides.requestHandler = {
        httpsAgent: new https.Agent({ ca: options.ca, keepAlive: true }),
      };
    }
    if (options.awsChecksums === false) {
      // Stores other than AWS do not all take the SDK's default CRC checksums.
      s3overrides.requestChecksumCalculation = 'WHEN_REQUIRED';
      s3overrides.responseChecksumValidation = 'WHEN_REQUIRED';
    }
    this._s3 = new (S3Adapter.default || S3Adapter)({
      bucket: options.bucket,
      region: options.region || 'us-east-1',
      bucketPrefix: options.bucketPrefix || '',
      directAccess: false,
      s3overrides,
    });
    this._fallback = fallbackStore(options.fallback);
  }

  get supportsStreaming() {
    return true;
  }

  createFile(filename, data, contentType, options) {
    return this._s3.createFile(filename, data, contentType, options);
  }

  async deleteFile(filename) {
    await this._s3.deleteFile(filename);
    // A file stored before the relation lives in the database's store.
    await Promise.resolve(this._fallback.deleteFile(filename)).catch(() => {});
  }

  async getFileData(filename) {
    try {
      return await this._s3.getFileData(filename);
    } catch (err) {
      if (!notFound(err)) {
        throw err;
      }
    }
    return this._fallback.getFileData(filename);
  }

  getFileLocation(config, filename) {
    return this._s3.getFileLocation(config, filename);
  }

  async handleFileStream(filename, req, res, contentType) {
    try {
      return await this._s3.handleFileStream(filename, req, res, contentType);
    } catch (err) {
      if (!notFound(err) || res.headersSent) {
        throw err;
      }
    }
    if (typeof this._fallback.handleFileStream === 'function') {
      return this._fallback.handleFileStream(filename, req, res, contentType);
    }
    const data = await this._fallback.getFileData(filename);
    sendRange(data, req, res, contentType);
    return data;
  }

  // Metadata and tags are kept by GridFS only (files stored before the relation).
  async getMetadata(filename) {
    if (typeof this._fallback.getMetadata !== 'function') {
      return {};
    }
    return Promise.resolve(this._fallback.getMetadata(filename)).catch(() => ({}));
  }

  async handleShutdown() {
    if (typeof this._fallback.handleShutdown === 'function') {
      await this._fallback.handleShutdown();
    }
  }
}

module.exports = CharmS3FilesAdapter;
module.exports.default = CharmS3FilesAdapter;

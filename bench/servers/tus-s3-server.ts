// @tus/server 2.x with @tus/s3-store on plain node:http: the S3 section's peer. The bucket comes
// from S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY; objects go
// under S3_BENCH_PREFIX. 8 MiB parts, as Ferry's default.
import http from 'node:http';
import { S3Store } from '@tus/s3-store';
import { Server } from '@tus/server';
import { announce, serverFlags } from './common.ts';

const flags = serverFlags();
const env = process.env;
const datastore = new S3Store({
  partSize: 8 * 1024 * 1024,
  s3ClientConfig: {
    bucket: env['S3_BUCKET']!,
    endpoint: env['S3_ENDPOINT']!,
    region: env['S3_REGION'] ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env['S3_ACCESS_KEY_ID']!, secretAccessKey: env['S3_SECRET_ACCESS_KEY']! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  },
});
const prefix = env['S3_BENCH_PREFIX'] ?? 'bench/';
const tus = new Server({
  path: '/files',
  datastore,
  namingFunction: () => `${prefix}tus-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  generateUrl: (_req, { proto, host, path, id }) => `${proto}://${host}${path}/${encodeURIComponent(id)}`,
  getFileIdFromRequest: (req) => decodeURIComponent(/\/files\/([^/]+)$/.exec(req.url ?? '')?.[1] ?? ''),
});
const server = http.createServer((req, res) => {
  void tus.handle(req, res);
});
announce(server, '@tus/server + s3-store', flags);

// @tus/server 2.x with @tus/file-store on plain node:http: the reference Ferry is compared with.
// Files land in `<dir>/<id>` (with `<dir>/<id>.json` beside each).
import http from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';
import { announce, serverFlags } from './common.ts';

const flags = serverFlags();
if (flags.dir === undefined) throw new Error('--dir is required');
const tus = new Server({ path: '/files', datastore: new FileStore({ directory: flags.dir }) });
const server = http.createServer((req, res) => {
  void tus.handle(req, res);
});
announce(server, '@tus/server', flags);

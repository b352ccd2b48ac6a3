// Baseline: the Node default write path, each PATCH body piped into fs.createWriteStream in append
// mode with default options. Files land in `<dir>/<id>`.
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { announce, serverFlags } from './common.ts';
import { createTusShapedServer } from './tus-shape.ts';

const flags = serverFlags();
const dir = flags.dir;
if (dir === undefined) throw new Error('--dir is required');
const server = createTusShapedServer({
  async create(id) {
    await writeFile(path.join(dir, id), '', { flag: 'wx' });
  },
  async append(id, body) {
    const file = createWriteStream(path.join(dir, id), { flags: 'a' });
    await pipeline(body, file);
    return file.bytesWritten;
  },
});
announce(server, 'node:http fs append', flags);

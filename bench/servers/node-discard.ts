// Baseline: node:http that reads every body and throws it away. Nothing can be faster with this
// client on this machine, so its row is the client-and-loopback ceiling for every workload.
import { announce, serverFlags } from './common.ts';
import { createTusShapedServer } from './tus-shape.ts';

const server = createTusShapedServer({
  async create() {},
  append(_id, body) {
    return new Promise((resolve, reject) => {
      let received = 0;
      body.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      body.on('end', () => resolve(received));
      body.on('error', reject);
    });
  },
});
announce(server, 'node:http discard', serverFlags());

// The least a node:http server must do to answer the load client's tus requests: POST creates an
// upload (201 + Location), PATCH appends at the current offset (204 + Upload-Offset). The baselines
// are built on it so they cost what a bare Node server costs, plus only their own body handling.
import { randomBytes } from 'node:crypto';
import http from 'node:http';

export interface BodySink {
  /** Called once per POST, before the 201. */
  create(id: string): Promise<void>;
  /** Consumes the whole request body; resolves with the bytes it kept. */
  append(id: string, body: http.IncomingMessage): Promise<number>;
}

const prefix = '/files/';

export function createTusShapedServer(sink: BodySink): http.Server {
  const offsets = new Map<string, number>();
  const reply = (res: http.ServerResponse, status: number, headers: Record<string, string | number> = {}) => {
    res.writeHead(status, { 'Tus-Resumable': '1.0.0', 'Content-Length': 0, ...headers }).end();
  };
  return http.createServer(async (req, res) => {
    try {
      if (req.method === 'POST' && req.url === prefix) {
        req.resume();
        const id = randomBytes(16).toString('hex');
        await sink.create(id);
        offsets.set(id, 0);
        reply(res, 201, { Location: `${prefix}${id}` });
        return;
      }
      const id = req.url?.startsWith(prefix) ? req.url.slice(prefix.length) : undefined;
      const offset = id === undefined ? undefined : offsets.get(id);
      if (req.method !== 'PATCH' || id === undefined || offset === undefined) {
        req.resume();
        reply(res, 404);
        return;
      }
      if (req.headers['content-type'] !== 'application/offset+octet-stream') {
        req.resume();
        reply(res, 415);
        return;
      }
      if (Number(req.headers['upload-offset']) !== offset) {
        req.resume();
        reply(res, 409, { 'Upload-Offset': offset });
        return;
      }
      const kept = await sink.append(id, req);
      offsets.set(id, offset + kept);
      reply(res, 204, { 'Upload-Offset': offset + kept });
    } catch (error) {
      process.stderr.write(`${String(error)}\n`);
      if (!res.headersSent) reply(res, 500);
      else res.destroy();
    }
  });
}

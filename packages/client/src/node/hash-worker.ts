/**
 * Worker thread: streams a file through node:crypto's SHA-256 so a multi-gigabyte fingerprint never
 * blocks the thread that sends the upload. Input `{ path, size }`; posts `{ sha256 }` or `{ error }`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { path, size } = workerData as { path: string; size: number };

try {
  const hash = createHash('sha256');
  let read = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    read += (chunk as Buffer).length;
  }
  if (read !== size) {
    parentPort?.postMessage({
      error: { message: `it has ${read} bytes now, ${size} when the upload started` },
    });
  } else {
    parentPort?.postMessage({ sha256: hash.digest('hex') });
  }
} catch (error) {
  const { code, message } = error as NodeJS.ErrnoException;
  parentPort?.postMessage({ error: { code, message } });
}

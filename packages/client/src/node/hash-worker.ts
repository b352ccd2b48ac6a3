/**
 * Worker thread: reads a file through node:crypto's SHA-256 so a multi-gigabyte fingerprint never
 * blocks the thread that sends the upload. Input `{ path, size }`; posts `{ sha256 }` or `{ error }`.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { path, size } = workerData as { path: string; size: number };

try {
  const hash = createHash('sha256');
  // One buffer, read into again and again: no allocation (and no garbage) per read.
  const buffer = Buffer.allocUnsafeSlow(1024 * 1024);
  const fd = openSync(path, 'r');
  let read = 0;
  try {
    for (;;) {
      const bytesRead = readSync(fd, buffer, 0, buffer.length, read);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      read += bytesRead;
    }
  } finally {
    closeSync(fd);
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

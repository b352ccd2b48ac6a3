/** The hashing thread of digest-thread.ts: runs batches of operations in the order they came. */
import { createHash, type Hash } from 'node:crypto';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { type Batch, type DigestResult, Op } from './digest-thread.ts';

const { returns, finished } = workerData as { returns: MessagePort; finished: Int32Array };
const hashes = new Map<number, Hash>();

function answer(result: DigestResult): void {
  parentPort?.postMessage(result);
}

parentPort?.on('message', (batch: Batch) => {
  const bytes = batch.buffer === undefined ? undefined : new Uint8Array(batch.buffer);
  for (const op of batch.ops) {
    switch (op[0]) {
      case Op.Create:
        hashes.set(op[1] as number, createHash(op[2] as string));
        break;
      case Op.Update: {
        const [, ids, offset, length] = op as [number, number[], number, number];
        const view = bytes?.subarray(offset, offset + length);
        if (view === undefined) break;
        for (const id of ids) hashes.get(id)?.update(view);
        break;
      }
      case Op.Copy: {
        const source = hashes.get(op[1] as number);
        if (source !== undefined) hashes.set(op[2] as number, source.copy());
        break;
      }
      case Op.Digest: {
        const [, id, request] = op as [number, number, number];
        const hash = hashes.get(id);
        hashes.delete(id);
        if (hash === undefined) answer({ request, error: `digest ${id} is unknown` });
        else answer({ request, digest: new Uint8Array(hash.digest()) });
        break;
      }
      case Op.Discard:
        hashes.delete(op[1] as number);
        break;
    }
  }
  if (batch.buffer !== undefined) {
    returns.postMessage(batch.buffer, [batch.buffer]);
    Atomics.add(finished, 0, 1);
    Atomics.notify(finished, 0);
  }
});

// The harness side of the load client: one forked process, one batch at a time.
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import type { LoadReply, LoadRequest } from '../client/load-client.ts';
import { repoRoot, track } from './servers.ts';
import type { LoadSpec } from './workloads.ts';

export interface LoadClient {
  pid: number;
  run(endpoint: string, spec: LoadSpec): Promise<LoadReply>;
  close(): void;
}

export async function startLoadClient(sliceSize: number): Promise<LoadClient> {
  const child: ChildProcess = fork(path.join(repoRoot, 'bench/client/load-client.ts'), [], {
    cwd: repoRoot,
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  track(child);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`load client exited (code ${code}) before it was ready`)));
  });
  let runId = 0;
  return {
    pid: child.pid!,
    run(endpoint, spec) {
      const request: LoadRequest = { runId: ++runId, endpoint, spec, sliceSize };
      return new Promise((resolve, reject) => {
        const onMessage = (reply: LoadReply) => {
          if (reply.runId !== request.runId) return;
          child.off('message', onMessage);
          child.off('exit', onExit);
          resolve(reply);
        };
        const onExit = (code: number | null) => {
          child.off('message', onMessage);
          reject(new Error(`load client exited (code ${code}) during a run`));
        };
        child.on('message', onMessage);
        child.once('exit', onExit);
        child.send(request);
      });
    },
    close() {
      child.disconnect();
    },
  };
}

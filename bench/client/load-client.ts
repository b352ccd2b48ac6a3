// The load client process. The harness forks it once and sends it one batch at a time over IPC;
// it answers with the outcome. It exits when the harness goes away.
import { createPayload } from '../lib/payload.ts';
import { type LoadOutcome, runLoad } from '../lib/tus-load.ts';
import type { LoadSpec } from '../lib/workloads.ts';

export interface LoadRequest {
  runId: number;
  endpoint: string;
  spec: LoadSpec;
  sliceSize: number;
}

export interface LoadReply extends LoadOutcome {
  runId: number;
}

if (process.send === undefined) {
  process.stderr.write('load-client must be started by bench/run.ts (it talks over IPC)\n');
  process.exit(2);
}

const payload = createPayload();
process.on('disconnect', () => process.exit(0));
process.on('message', async (request: LoadRequest) => {
  let outcome: LoadOutcome;
  try {
    outcome = await runLoad(request.endpoint, request.spec, payload, request.sliceSize);
  } catch (cause) {
    outcome = { ok: false, error: String(cause), elapsedMs: 0, clientCpuSeconds: 0, bytes: 0, uploads: [] };
  }
  process.send!({ runId: request.runId, ...outcome } satisfies LoadReply);
});
process.send({ ready: true });

// The emulated long link of the client benchmark: `startFaultProxy` from @ferry/testing in a process
// of its own, so the CPU it spends moving bytes through its delay lines and windows is neither the
// client's nor the server's, and the three do not share one event loop. The harness asks it over IPC
// to (re)start in front of a server, and for its counters.
import { type FaultProxy, type FaultProxyStats, type FaultRules, startFaultProxy } from '@ferry/testing';

export type ProxyCommand = { op: 'start'; target: string; faults: FaultRules } | { op: 'stats' };
export type ProxyRequest = ProxyCommand & { id: number };

export type ProxyReply =
  | { id: number; ok: true; url?: string; stats?: FaultProxyStats }
  | { id: number; ok: false; error: string };

if (process.send === undefined) {
  process.stderr.write('link-proxy must be started by the bench harness (it talks over IPC)\n');
  process.exit(2);
}

let proxy: FaultProxy | undefined;

async function handle(request: ProxyRequest): Promise<ProxyReply> {
  if (request.op === 'stats') {
    if (proxy === undefined) return { id: request.id, ok: false, error: 'no proxy running' };
    return { id: request.id, ok: true, stats: proxy.stats };
  }
  await proxy?.close();
  proxy = undefined;
  proxy = await startFaultProxy({ target: request.target, host: '127.0.0.1', faults: request.faults });
  return { id: request.id, ok: true, url: proxy.url };
}

process.on('disconnect', () => {
  void (proxy?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
process.on('message', (request: ProxyRequest) => {
  handle(request).then(
    (reply) => process.send!(reply),
    (error: unknown) =>
      process.send!({ id: request.id, ok: false, error: String(error) } satisfies ProxyReply),
  );
});
process.send({ ready: true });

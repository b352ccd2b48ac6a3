// Traces one upload from the web app in Chromium and says what ran in the page's long tasks.
//
//   node bench/trace-web.ts [--protocol tus|parts] [--size MiB] [--out trace.json] [--no-profiler]
//
// Runs a fresh `ferry serve`, opens the app in headless Chromium over a bare DevTools connection,
// records a performance trace (Tracing: toplevel, devtools.timeline and the V8 sampling profiler)
// from the pick until the download link appears, and samples the page's main thread in
// /proc/<pid>/task/<tid>/schedstat (CPU time and time spent runnable, waiting for a core). For every
// main-thread task over 50 ms it prints its wall time, its thread CPU time, the time its thread
// waited for a core, the trace events inside it and the JavaScript functions the profiler sampled.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromiumArgs, chromiumPath } from './lib/cdp.ts';
import { probeFerry, repoRoot, serverDefs, startServer } from './lib/servers.ts';

const { values } = parseArgs({
  options: {
    protocol: { type: 'string', default: 'tus' },
    size: { type: 'string', default: '1024' },
    out: { type: 'string' },
    // The V8 sampling profiler costs the page CPU and lengthens its first task; leave it out to see
    // the tasks as the bench does.
    'no-profiler': { type: 'boolean', default: false },
    // No trace at all: the upload as the bench runs it, to read each process's CPU time from outside.
    'no-trace': { type: 'boolean', default: false },
  },
});
const protocol = values.protocol;
const size = Number.parseInt(values.size, 10) * 1024 * 1024;

// biome-ignore lint/suspicious/noExplicitAny: Chromium's trace events and DevTools messages are loosely shaped JSON, read field by field
type Json = any;

interface TraceEvent {
  name: string;
  cat: string;
  ph: string;
  ts: number;
  dur?: number;
  tdur?: number;
  pid: number;
  tid: number;
  args?: Record<string, Json>;
  id?: string;
}

const temp = mkdtempSync(path.join(os.tmpdir(), 'ferry-trace-'));
const file = path.join(temp, 'source.bin');
{
  const block = Buffer.allocUnsafe(16 * 1024 * 1024);
  const fd = openSync(file, 'w');
  const hash = createHash('sha256');
  for (let written = 0; written < size; written += block.length) {
    randomFillSync(block);
    hash.update(block);
    writeSync(fd, block, 0, Math.min(block.length, size - written));
  }
  closeSync(fd);
}
execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'ensure-web.mjs')], { stdio: 'inherit' });

const server = await startServer(serverDefs(probeFerry()).ferry, path.join(temp, 'data'));
const profile = path.join(temp, 'profile');
const chromium = spawn(chromiumPath, chromiumArgs(profile), { stdio: ['ignore', 'ignore', 'pipe'] });
const wsUrl = await new Promise<string>((resolve) => {
  let seen = '';
  chromium.stderr.setEncoding('utf8').on('data', (text: string) => {
    seen += text;
    const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
    if (match?.[1] !== undefined) resolve(match[1]);
  });
});
const socket = new WebSocket(wsUrl);
await new Promise((resolve) => socket.addEventListener('open', resolve, { once: true }));
let nextId = 0;
const pending = new Map<number, (message: Json) => void>();
const listeners = new Set<(message: Json) => void>();
socket.addEventListener('message', (event) => {
  const message = JSON.parse(String(event.data));
  if (message.id !== undefined) {
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  } else for (const listener of listeners) listener(message);
});
function send<T = Json>(method: string, params: object = {}, sessionId?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const id = ++nextId;
    pending.set(id, (message) =>
      message.error ? reject(new Error(`${method}: ${message.error.message}`)) : resolve(message.result),
    );
    socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  });
}

const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
await send('Page.enable', {}, sessionId);
const loaded = new Promise<void>((resolve) =>
  listeners.add((m) => m.sessionId === sessionId && m.method === 'Page.loadEventFired' && resolve()),
);
await send('Page.navigate', { url: `${new URL(server.endpoint).origin}/` }, sessionId);
await loaded;
async function evaluate<T>(expression: string): Promise<T> {
  const reply = await send(
    'Runtime.evaluate',
    { expression, awaitPromise: true, returnByValue: true },
    sessionId,
  );
  if (reply.exceptionDetails) throw new Error(JSON.stringify(reply.exceptionDetails));
  return reply.result.value as T;
}
while (!(await evaluate<boolean>(`document.querySelector('.ferry-dropzone input[type=file]') !== null`)))
  await new Promise((resolve) => setTimeout(resolve, 100));
if (protocol === 'tus')
  await evaluate(`document.querySelector('input[name=protocol][value=tus]').click(), true`);
await evaluate(`(() => {
  globalThis.seen = { tasks: [] };
  new PerformanceObserver((list) => { for (const e of list.getEntries()) seen.tasks.push({ start: e.startTime, ms: e.duration }); }).observe({ type: 'longtask' });
  return true;
})()`);

// The renderer of the page: the process whose command line says --type=renderer and which holds
// the page (the one with the most CPU at the end, in practice); every renderer's main thread is sampled.
function renderers(): number[] {
  const out = execFileSync('ps', ['-eo', 'pid,ppid,args'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes('--type=renderer') && line.includes(profile))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}
const sampled = renderers();
const samples: { t: number; pid: number; cpu: number; wait: number }[] = [];
// Not with --no-trace: sampling every 5 ms costs several CPU-seconds of its own per upload.
const sampler = values['no-trace']
  ? undefined
  : setInterval(() => {
      const t = Number(process.hrtime.bigint() / 1000n);
      for (const pid of sampled) {
        try {
          const [cpu, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8')
            .split(' ')
            .map(Number);
          samples.push({ t, pid, cpu: cpu! / 1000, wait: wait! / 1000 });
        } catch {}
      }
    }, 5);

const events: TraceEvent[] = [];
listeners.add((m) => {
  if (m.method === 'Tracing.dataCollected') events.push(...m.params.value);
});
const tracingDone = new Promise<void>((resolve) =>
  listeners.add((m) => m.method === 'Tracing.tracingComplete' && resolve()),
);
if (!values['no-trace'])
  await send('Tracing.start', {
    traceConfig: {
      includedCategories: [
        'toplevel',
        'devtools.timeline',
        'disabled-by-default-devtools.timeline',
        'v8.execute',
        'v8',
        'blink',
        ...(values['no-profiler'] ? [] : ['disabled-by-default-v8.cpu_profiler']),
        'disabled-by-default-v8.gc',
        'mojom',
        'ipc',
        'scheduler',
      ],
      recordMode: 'recordContinuously',
    },
    transferMode: 'ReportEvents',
  });
await send('DOM.enable', {}, sessionId);
const { root } = await send('DOM.getDocument', {}, sessionId);
const { nodeId } = await send(
  'DOM.querySelector',
  { nodeId: root.nodeId, selector: '.ferry-dropzone input[type=file]' },
  sessionId,
);
const pickedAt = Date.now();
await send('DOM.setFileInputFiles', { nodeId, files: [file] }, sessionId);
for (;;) {
  const done = await evaluate<boolean>(
    `document.querySelector('.finished .file a') !== null || document.querySelector('.ferry-upload[data-state=failed]') !== null`,
  );
  if (done) break;
  await new Promise((resolve) => setTimeout(resolve, 250));
}
const seconds = (Date.now() - pickedAt) / 1000;
if (!values['no-trace']) {
  await send('Tracing.end');
  await tracingDone;
}
clearInterval(sampler);
const pageTasks = await evaluate<{ start: number; ms: number }[]>('seen.tasks');
// CPU time of every Chromium process of this run and of the server, from pick to end (the page was
// idle before the pick): where the CPU of an upload from the browser goes.
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
};
const processCpu: string[] = [];
if (values['no-trace']) {
  const lines = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n');
  for (const line of lines.filter((l) => l.includes(profile))) {
    const pid = Number(line.trim().split(/\s+/)[0]);
    const kind =
      /--utility-sub-type=([\w.]+)/.exec(line)?.[1] ?? /--type=([\w-]+)/.exec(line)?.[1] ?? 'browser';
    try {
      processCpu.push(`${kind} ${cpuSeconds(pid).toFixed(2)}`);
    } catch {}
  }
  for (const pid of server.pids) processCpu.push(`ferry serve ${cpuSeconds(pid).toFixed(2)}`);
}
socket.close();
chromium.kill('SIGTERM');
await server.stop();
if (values.out) writeFileSync(values.out, JSON.stringify({ traceEvents: events }));

console.log(
  `${protocol}: ${(size / 1e6 / seconds).toFixed(1)} MB/s, ${seconds.toFixed(1)} s, ${events.length} trace events`,
);
console.log(`page's long tasks: ${pageTasks.map((t) => t.ms.toFixed(0)).join(', ')}`);
if (values['no-trace']) {
  console.log(`CPU seconds since start, by process:\n  ${processCpu.join('\n  ')}`);
  process.exit(0);
}

// The page's main thread: CrRendererMain of the renderer with the most top-level task time.
const names = new Map<string, string>();
for (const e of events)
  if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args!['name']);
const taskTime = new Map<string, number>();
const isTask = (e: TraceEvent) =>
  e.ph === 'X' && (e.name === 'ThreadControllerImpl::RunTask' || e.name === 'RunTask');
for (const e of events)
  if (isTask(e) && names.get(`${e.pid}:${e.tid}`) === 'CrRendererMain')
    taskTime.set(`${e.pid}:${e.tid}`, (taskTime.get(`${e.pid}:${e.tid}`) ?? 0) + (e.dur ?? 0));
const main = [...taskTime].sort((a, b) => b[1] - a[1])[0]![0];
const [mainPid] = main.split(':').map(Number);
const onMain = events.filter((e) => `${e.pid}:${e.tid}` === main);
const tasks = onMain.filter((e) => isTask(e) && (e.dur ?? 0) > 50_000);
console.log(`main thread ${main}: ${onMain.filter(isTask).length} tasks, ${tasks.length} over 50 ms`);

// Profile samples: ProfileChunk events carry nodes (callFrame) and samples with time deltas.
const nodes = new Map<number, { fn: string; parent?: number }>();
const profSamples: { t: number; node: number }[] = [];
for (const e of events) {
  if (e.pid !== mainPid || (e.name !== 'ProfileChunk' && e.name !== 'Profile')) continue;
  const data = e.args?.['data'];
  if (e.name === 'Profile') continue;
  const cpu = data?.cpuProfile;
  for (const node of cpu?.nodes ?? []) {
    const f = node.callFrame;
    nodes.set(node.id, {
      fn: `${f.functionName || '(anon)'} ${String(f.url ?? '')
        .split('/')
        .pop()}:${f.lineNumber ?? ''}`,
      parent: node.parent,
    });
  }
  let t = e.ts;
  const deltas: number[] = data?.timeDeltas ?? [];
  (cpu?.samples ?? []).forEach((node: number, i: number) => {
    t += deltas[i] ?? 0;
    profSamples.push({ t, node });
  });
}
// Profile chunk timestamps start at the Profile event's startTime; recompute from it.
{
  const start = events.find((e) => e.pid === mainPid && e.name === 'Profile')?.args?.['data']?.startTime;
  if (start !== undefined) {
    let t = start;
    profSamples.length = 0;
    for (const e of events.filter((x) => x.pid === mainPid && x.name === 'ProfileChunk')) {
      const data = e.args!['data'];
      const deltas: number[] = data.timeDeltas ?? [];
      (data.cpuProfile?.samples ?? []).forEach((node: number, i: number) => {
        t += deltas[i] ?? 0;
        profSamples.push({ t, node });
      });
    }
  }
}
function stack(node: number): string {
  const names: string[] = [];
  for (let at: number | undefined = node; at !== undefined && names.length < 6; at = nodes.get(at)?.parent)
    names.push(nodes.get(at)?.fn ?? String(at));
  return names.join(' < ');
}
function schedIn(from: number, to: number): { cpu: number; wait: number } {
  const mine = samples.filter((s) => s.pid === mainPid);
  const before = mine.filter((s) => s.t <= from).at(-1);
  const after = mine.find((s) => s.t >= to);
  if (before === undefined || after === undefined) return { cpu: Number.NaN, wait: Number.NaN };
  return { cpu: (after.cpu - before.cpu) / 1000, wait: (after.wait - before.wait) / 1000 };
}
for (const task of tasks) {
  const end = task.ts + task.dur!;
  const sched = schedIn(task.ts, end);
  console.log(
    `\nTASK ${(task.dur! / 1000).toFixed(0)} ms wall, ${((task.tdur ?? 0) / 1000).toFixed(1)} ms thread CPU; schedstat around it: cpu ${sched.cpu.toFixed(1)} ms, runnable-waiting ${sched.wait.toFixed(1)} ms; src ${task.args?.['src_func'] ?? task.args?.['src_file'] ?? ''}`,
  );
  const inside = onMain
    .filter((e) => e !== task && e.ph === 'X' && e.ts >= task.ts && e.ts < end && (e.dur ?? 0) >= 2000)
    .sort((a, b) => a.ts - b.ts);
  for (const e of inside.slice(0, 25))
    console.log(
      `  +${((e.ts - task.ts) / 1000).toFixed(1)} ${e.name} ${(e.dur! / 1000).toFixed(1)} ms (cpu ${((e.tdur ?? 0) / 1000).toFixed(1)}) ${JSON.stringify(e.args?.['data'] ?? {}).slice(0, 160)}`,
    );
  const counts = new Map<string, number>();
  for (const s of profSamples)
    if (s.t >= task.ts && s.t < end) counts.set(stack(s.node), (counts.get(stack(s.node)) ?? 0) + 1);
  for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8))
    console.log(`  sample x${n}: ${name}`);
}
// Totals for the main thread over the upload.
const mine = samples.filter((s) => s.pid === mainPid);
if (mine.length > 1)
  console.log(
    `\nmain thread over the upload: cpu ${((mine.at(-1)!.cpu - mine[0]!.cpu) / 1e6).toFixed(2)} s, runnable-waiting ${((mine.at(-1)!.wait - mine[0]!.wait) / 1e6).toFixed(2)} s`,
  );
rmSync(temp, { recursive: true, force: true });
process.exit(0);

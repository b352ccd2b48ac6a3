// Per-process CPU and memory readings from Linux /proc. Each server runs as its own child process,
// so these numbers belong to that server alone (every thread of the process is included: libuv's
// file-system threads write the bytes, and their time counts too).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

const ticksPerSecond = clockTicksPerSecond();

/** Fields of /proc/<pid>/stat after the command name (which may itself hold spaces and parens). */
function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU seconds the process has used so far (0 once it is gone). */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (fields === undefined) return 0;
  // proc(5): utime is field 14 and stime field 15; fields[0] here is field 3 (state).
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

function statusKiB(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 0;
  }
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

export function rssKiB(pid: number): number {
  return statusKiB(pid, 'VmRSS');
}

export function highWaterKiB(pid: number): number {
  return statusKiB(pid, 'VmHWM');
}

/** Resets VmHWM to the current RSS (proc(5), clear_refs value 5). False where the kernel refuses. */
export function resetHighWater(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The process and every process below it, so a server that forks workers is measured whole. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields === undefined) continue;
    const parent = Number(fields[1]);
    const list = children.get(parent) ?? [];
    list.push(Number(entry));
    children.set(parent, list);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * CPU seconds that processes have used on the whole machine, summed over cores: user, nice and
 * system time, less the kernel's own threads (page-cache writeback, network soft interrupts and
 * memory scanning, which our own servers cause or which run regardless). Interrupt and steal time
 * are left out for the same reason.
 */
export function processBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user = 0, nice = 0, system = 0] = line.trim().split(/\s+/).slice(1, 4).map(Number);
  return (user + nice + system) / ticksPerSecond - kernelThreadSeconds();
}

/** CPU seconds used so far by kernel threads (children of kthreadd, pid 2). */
function kernelThreadSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields !== undefined && (entry === '2' || fields[1] === '2'))
      total += Number(fields[11]) + Number(fields[12]);
  }
  return total / ticksPerSecond;
}

/**
 * Measures one interval for a set of processes: CPU seconds used and the peak resident set.
 * The peak comes from VmHWM after a reset when the kernel allows it (exact, catches short spikes),
 * and otherwise from polling VmRSS every `pollMs` milliseconds.
 */
export interface Meter {
  stop(): {
    cpuSeconds: number;
    /** Resident set when the interval began: what the process holds at rest. */
    startRssMiB: number;
    peakRssMiB: number;
    peakMethod: 'hwm' | 'poll';
    /** Share of the machine's CPU (0..1) used by processes outside `pids`, `ownPids` and the harness. */
    otherLoad: number;
  };
}

/** `ownPids`: the benchmark's other processes (the load client), left out of `otherLoad`. */
export function startMeter(pids: readonly number[], ownPids: readonly number[] = [], pollMs = 50): Meter {
  const cpuOf = (list: readonly number[]) => list.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const selfCpu = () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  };
  const cpuStart = cpuOf(pids);
  const ownStart = cpuOf(ownPids) + selfCpu();
  const busyStart = processBusySeconds();
  const wallStart = performance.now();
  const hwmOk = pids.length === 1 && resetHighWater(pids[0]!);
  let polledPeak = 0;
  const poll = () => {
    const total = pids.reduce((sum, pid) => sum + rssKiB(pid), 0);
    if (total > polledPeak) polledPeak = total;
  };
  poll();
  const startKiB = polledPeak;
  const timer = setInterval(poll, pollMs);
  return {
    stop() {
      clearInterval(timer);
      poll();
      const cpu = cpuOf(pids) - cpuStart;
      const own = cpuOf(ownPids) + selfCpu() - ownStart;
      const busy = processBusySeconds() - busyStart;
      const capacity = ((performance.now() - wallStart) / 1000) * availableParallelism();
      const otherLoad = capacity > 0 ? Math.min(1, Math.max(0, (busy - cpu - own) / capacity)) : 0;
      const hwm = hwmOk ? highWaterKiB(pids[0]!) : 0;
      const peakKiB = Math.max(polledPeak, hwm);
      return {
        cpuSeconds: cpu,
        startRssMiB: startKiB / 1024,
        peakRssMiB: peakKiB / 1024,
        peakMethod: hwmOk ? 'hwm' : 'poll',
        otherLoad,
      };
    },
  };
}

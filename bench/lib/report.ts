// Renders the results as markdown: targets first, then one table per workload, ratios, memory.
import { clientFailureLines, renderClientSection } from './client-report.ts';
import type { BenchResult, Cell, MemoryResult, RunSample, WorkloadResult } from './results.ts';
import { goodSamples, usedSamples } from './results.ts';
import type { ServerId } from './servers.ts';
import { max, median, min } from './stats.ts';
import type { WorkloadId } from './workloads.ts';

/** Ferry / @tus throughput ratios the performance issue asks for, per workload. */
export const ratioTargets: Record<WorkloadId, number> = { W1: 1.75, W2: 2.2, W3: 2.3, W4: 3.0 };
export const w3RssTargetMiB = 100;
export const flatnessTarget = 0.1;

function num(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function times(value: number): string {
  return Number.isFinite(value) ? `${num(value)}×` : '–';
}

function spread(values: number[]): string {
  if (values.length === 0) return '–';
  if (values.length === 1) return num(values[0]!);
  return `${num(median(values))} (${num(min(values))}–${num(max(values))})`;
}

function cellOf(result: WorkloadResult, server: ServerId): Cell | undefined {
  return result.workload && result.cells.find((cell) => cell.server === server);
}

function medianThroughput(result: WorkloadResult, server: ServerId): number {
  return median(usedSamples(cellOf(result, server)).map((s) => s.throughput));
}

function ratio(result: WorkloadResult, over: ServerId, under: ServerId): number {
  return medianThroughput(result, over) / medianThroughput(result, under);
}

/** Work done per server CPU second: steadier than throughput when other processes share the CPU. */
function medianEfficiency(result: WorkloadResult, server: ServerId): number {
  return median(
    usedSamples(cellOf(result, server)).map((s) => (s.throughput * s.seconds) / s.serverCpuSeconds),
  );
}

function status(value: number, met: boolean): string {
  return Number.isFinite(value) ? (met ? 'met' : '**missed**') : 'n/a';
}

const busyThreshold = 0.2;

/** Median share of the machine's CPU that other processes used during a workload's runs. */
function otherLoad(result: WorkloadResult): number {
  return median(result.cells.flatMap((c) => usedSamples(c).map((s) => s.otherLoad)));
}

function workloadTable(result: WorkloadResult): string[] {
  const { workload } = result;
  const perCpu = workload.unit === 'MB/s' ? 'MB per server CPU s' : 'uploads per server CPU s';
  const lines = [
    `### ${workload.id} — ${workload.title}`,
    '',
    `| server | ${workload.unit} median (min–max) | server CPU s | ${perCpu} | RSS MiB at start → peak (max) | client CPU | other load | runs used | stored files verified |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const cell of result.cells) {
    if (cell.unavailable !== undefined) {
      lines.push(`| ${cell.label} | unavailable | | | | | | | ${cell.unavailable.split('\n')[0]} |`);
      continue;
    }
    const good = goodSamples(cell);
    const used = usedSamples(cell);
    const work = (s: RunSample) => s.throughput * s.seconds;
    const verified =
      cell.server === 'node-discard' ? 'n/a (discards)' : `${sum(good.map((s) => s.verified))}`;
    const bad = cell.samples.length - good.length;
    lines.push(
      [
        '',
        cell.label,
        spread(used.map((s) => s.throughput)),
        num(median(used.map((s) => s.serverCpuSeconds))),
        num(median(used.map((s) => work(s) / s.serverCpuSeconds))),
        // Memory is taken over every good run, so leaving busy runs out can never hide a peak.
        `${num(median(good.map((s) => s.startRssMiB)))} → ${num(max(good.map((s) => s.peakRssMiB)))}`,
        share(median(used.map((s) => s.clientCpuSeconds / s.seconds))),
        share(median(used.map((s) => s.otherLoad))),
        `${used.length} of ${cell.samples.length}`,
        bad > 0 ? `${verified}; **${bad} of ${cell.samples.length} runs FAILED**` : verified,
        '',
      ]
        .join(' | ')
        .trim(),
    );
  }
  return lines;
}

function share(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value * 100)} %` : '–';
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function ratioTable(results: WorkloadResult[]): string[] {
  const lines = [
    '| workload | Ferry / @tus | target | status | Ferry --hash-uploads / @tus | Ferry / node fs append | Ferry / node discard | Ferry / @tus per server CPU s |',
    '| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const result of results) {
    const id = result.workload.id;
    const main = ratio(result, 'ferry', 'tus');
    lines.push(
      `| ${id} | ${times(main)} | ≥ ${ratioTargets[id]}× | ${status(main, main >= ratioTargets[id])} | ` +
        `${times(ratio(result, 'ferry-sha256', 'tus'))} | ${times(ratio(result, 'ferry', 'node-fs'))} | ` +
        `${times(ratio(result, 'ferry', 'node-discard'))} | ` +
        `${times(medianEfficiency(result, 'ferry') / medianEfficiency(result, 'tus'))} |`,
    );
  }
  return lines;
}

function smallPeak(memory: MemoryResult): number {
  const ok = memory.small.filter((s) => s.ok);
  return ok.length === memory.small.length ? max(ok.map((s) => s.peakRssMiB)) : Number.NaN;
}

function growth(memory: MemoryResult): number {
  if (memory.large === undefined || !memory.large.ok) return Number.NaN;
  return memory.large.peakRssMiB / smallPeak(memory) - 1;
}

function percent(value: number): string {
  return Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)} %` : '–';
}

function memoryTable(memory: MemoryResult[]): string[] {
  const lines = [
    '| server | peak RSS MiB, 256 MiB upload (max of runs) | peak RSS MiB, 4 GiB upload | growth | 4 GiB MB/s | status |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of memory) {
    if (row.unavailable !== undefined) {
      lines.push(`| ${row.label} | unavailable | | | | ${row.unavailable.split('\n')[0]} |`);
      continue;
    }
    const g = growth(row);
    const error = row.small.find((s) => !s.ok)?.error ?? row.large?.error;
    lines.push(
      `| ${row.label} | ${num(smallPeak(row))} | ${num(row.large?.peakRssMiB ?? Number.NaN)} | ` +
        `${percent(g)} | ${num(row.large?.throughput ?? Number.NaN)} | ${error ?? status(g, Math.abs(g) <= flatnessTarget)} |`,
    );
  }
  return lines;
}

function targetTable(result: BenchResult): string[] {
  const lines = ['| target | measured | goal | status |', '| --- | ---: | ---: | --- |'];
  for (const workload of result.workloads) {
    const id = workload.workload.id;
    const value = ratio(workload, 'ferry', 'tus');
    lines.push(
      `| ${id} throughput, Ferry / @tus | ${times(value)} | ≥ ${ratioTargets[id]}× | ${status(value, value >= ratioTargets[id])} |`,
    );
  }
  const w3 = result.workloads.find((w) => w.workload.id === 'W3');
  if (w3 !== undefined) {
    const rss = max(goodSamples(cellOf(w3, 'ferry')).map((s) => s.peakRssMiB));
    lines.push(
      `| W3 Ferry peak RSS | ${num(rss)} MiB | ≤ ${w3RssTargetMiB} MiB | ${status(rss, rss <= w3RssTargetMiB)} |`,
    );
  }
  const flat = result.memory.find((m) => m.server === 'ferry');
  if (flat !== undefined) {
    const g = growth(flat);
    lines.push(
      `| Ferry peak RSS, 4 GiB vs 256 MiB upload | ${percent(g)} | within ±${flatnessTarget * 100} % | ${status(g, Math.abs(g) <= flatnessTarget)} |`,
    );
  }
  return lines;
}

function failureLines(result: BenchResult): string[] {
  const lines: string[] = [];
  const note = (where: string, sample: RunSample | undefined) => {
    if (sample === undefined) return;
    if (!sample.ok) lines.push(`- ${where}: run failed: ${sample.error}`);
    for (const failure of sample.failures.slice(0, 5))
      lines.push(`- ${where}: **SHA-256 MISMATCH** ${failure}`);
  };
  for (const workload of result.workloads) {
    for (const cell of workload.cells) {
      cell.samples.forEach((sample, run) => {
        note(`${workload.workload.id} ${cell.label} run ${run + 1}`, sample);
      });
    }
  }
  for (const row of result.memory) {
    row.small.forEach((sample, run) => {
      note(`memory ${row.label} 256 MiB run ${run + 1}`, sample);
    });
    note(`memory ${row.label} 4 GiB`, row.large);
  }
  return lines;
}

export function renderReport(result: BenchResult): string {
  const env = result.environment;
  const failures = [
    ...failureLines(result),
    ...(result.client === undefined ? [] : clientFailureLines(result.client)),
  ];
  const serverSections = result.workloads.length > 0 || result.memory.length > 0;
  const lines = [
    '# Ferry benchmark results',
    '',
    `${env.date} · commit ${env.commit} · Node ${env.node} · ${env.cpu}, ${env.cores} cores, ${env.memoryGiB} GiB · ` +
      `load average ${env.loadAverage} at start · ` +
      (serverSections ? `${env.runs} measured run(s) per cell · ` : '') +
      `${Math.round(env.durationSeconds)} s in all`,
    '',
    `Command: \`${env.command}\`. How to read this: docs/benchmarks.md. MB = 10^6 bytes; RSS in MiB.` +
      (serverSections
        ? ` Runs during which other processes used more than ${share(env.maxOtherLoad)} of the CPU are repeated ` +
          'and left out whenever an undisturbed run exists ("runs used").'
        : ''),
    '',
  ];
  if (failures.length > 0) lines.push('## FAILURES', '', ...failures, '');
  const busy = result.workloads
    .map((w) => ({ id: w.workload.id, load: otherLoad(w) }))
    .filter((w) => w.load > busyThreshold);
  if (busy.length > 0) {
    lines.push(
      `**Busy machine: other processes used much of the CPU during ${busy
        .map((w) => `${w.id} (${share(w.load)})`)
        .join(', ')}.** Throughput and its ratios are unreliable there; the per-CPU-second ` +
        'columns hold up better. Re-run on a quiet machine before drawing conclusions.',
      '',
    );
  }
  if (result.workloads.length > 0 || result.memory.length > 0)
    lines.push('## Targets', '', ...targetTable(result), '');
  if (result.workloads.length > 0) {
    lines.push('## Ratios of median throughput', '', ...ratioTable(result.workloads), '');
    lines.push('## Workloads', '');
    for (const workload of result.workloads) lines.push(...workloadTable(workload), '');
  }
  if (result.memory.length > 0) {
    lines.push(
      '## Memory flatness (one single-PATCH upload each, fresh server)',
      '',
      ...memoryTable(result.memory),
      '',
    );
  }
  if (result.client !== undefined) lines.push(...renderClientSection(result.client));
  return `${lines.join('\n').trimEnd()}\n`;
}

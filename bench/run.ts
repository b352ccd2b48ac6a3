// `npm run bench`: Ferry against @tus/server and two bare node:http baselines, side by side in one
// run. Each server is its own child process (so CPU and RSS are its own); the load client is another.
// See docs/benchmarks.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runClientSection } from './lib/client-bench.ts';
import { type LoadClient, startLoadClient } from './lib/client-handle.ts';
import { type BenchOptions, parseOptions, usage } from './lib/options.ts';
import { startMeter } from './lib/proc.ts';
import { renderReport } from './lib/report.ts';
import type { BenchResult, Cell, MemoryResult, RunSample, WorkloadResult } from './lib/results.ts';
import { hasFailures, isClean } from './lib/results.ts';
import { renderS3Section, runS3Section } from './lib/s3-bench.ts';
import {
  type FerryProbe,
  killChildrenNow,
  probeFerry,
  type RunningServer,
  repoRoot,
  type ServerDef,
  serverDefs,
  startServer,
} from './lib/servers.ts';
import { verifyAndRemove } from './lib/verify.ts';
import { runWebSection, type WebSectionResult, webFailed } from './lib/web-bench.ts';
import { renderWebSection } from './lib/web-report.ts';
import { type LoadSpec, memorySpecs, type Workload, warmUpSpec, workloads } from './lib/workloads.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Extra runs for a busy machine start only before this, so a default bench stays near 15 minutes. */
let extraRunsDeadline = 0;

let tempRoot: string | undefined;
function cleanUp(): void {
  killChildrenNow();
  if (tempRoot !== undefined) rmSync(tempRoot, { recursive: true, force: true });
  tempRoot = undefined;
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    log(`\n${signal}: stopping servers and removing temporary files`);
    cleanUp();
    process.exit(130);
  });
}

async function measure(
  server: RunningServer,
  client: LoadClient,
  spec: LoadSpec,
  unit: Workload['unit'],
  keepFiles = false,
): Promise<RunSample> {
  const gone = server.exited();
  const failed = (error: string): RunSample => ({
    ok: false,
    error,
    seconds: 0,
    throughput: 0,
    serverCpuSeconds: 0,
    startRssMiB: 0,
    peakRssMiB: 0,
    peakMethod: 'poll',
    clientCpuSeconds: 0,
    otherLoad: 0,
    verified: 0,
    failures: [],
  });
  if (gone !== undefined) return failed(`server ${gone}`);
  const meter = startMeter(server.pids, [client.pid]);
  const reply = await client.run(server.endpoint, spec);
  const usage = meter.stop();
  if (!reply.ok) {
    const exit = server.exited();
    return failed(`${reply.error}${exit ? ` (server ${exit}: ${server.logTail().slice(-500)})` : ''}`);
  }
  const seconds = reply.elapsedMs / 1000;
  const check = await verifyAndRemove(server.def, server.dataDir, reply.uploads, !keepFiles);
  return {
    ok: true,
    seconds,
    throughput: unit === 'MB/s' ? reply.bytes / 1e6 / seconds : spec.uploads / seconds,
    serverCpuSeconds: usage.cpuSeconds,
    startRssMiB: usage.startRssMiB,
    peakRssMiB: usage.peakRssMiB,
    peakMethod: usage.peakMethod,
    clientCpuSeconds: reply.clientCpuSeconds,
    otherLoad: usage.otherLoad,
    verified: check.verified,
    failures: check.failures,
  };
}

function describe(sample: RunSample, unit: string): string {
  if (!sample.ok) return `FAILED: ${sample.error}`;
  const mismatch =
    sample.failures.length > 0 ? `  *** ${sample.failures.length} SHA-256 MISMATCH(ES) ***` : '';
  return (
    `${sample.throughput.toFixed(1)} ${unit}, server CPU ${sample.serverCpuSeconds.toFixed(2)} s, ` +
    `RSS ${sample.startRssMiB.toFixed(0)} → ${sample.peakRssMiB.toFixed(0)} MiB, client CPU ${((100 * sample.clientCpuSeconds) / sample.seconds).toFixed(0)} %, ` +
    `other load ${(100 * sample.otherLoad).toFixed(0)} %, ` +
    `${sample.seconds.toFixed(2)} s${mismatch}`
  );
}

/** Starts a server and warms it up; returns why it cannot be measured, or the running server. */
async function prepare(def: ServerDef, dataDir: string, client: LoadClient, ferry: FerryProbe) {
  if (def.ferry && !ferry.available) return ferry.reason;
  let server: RunningServer;
  try {
    server = await startServer(def, dataDir);
  } catch (error) {
    return `did not start: ${(error as Error).message}`;
  }
  const warm = await measure(server, client, warmUpSpec, 'MB/s');
  if (!warm.ok || warm.failures.length > 0) {
    await server.stop();
    return `warm-up failed: ${warm.error ?? warm.failures[0]}`;
  }
  return server;
}

async function runWorkload(
  workload: Workload,
  defs: ServerDef[],
  client: LoadClient,
  options: BenchOptions,
  ferry: FerryProbe,
): Promise<WorkloadResult> {
  const dir = mkdtempSync(path.join(tempRoot!, `${workload.id}-`));
  const cells: Cell[] = [];
  const running: { server: RunningServer; cell: Cell }[] = [];
  for (const def of defs) {
    const cell: Cell = { server: def.id, label: def.label, samples: [], maxOtherLoad: options.maxOtherLoad };
    cells.push(cell);
    const prepared = await prepare(def, path.join(dir, def.id), client, ferry);
    if (typeof prepared === 'string') {
      cell.unavailable = prepared;
      log(`${workload.id} ${def.label}: unavailable — ${prepared.split('\n')[0]}`);
    } else running.push({ server: prepared, cell });
  }
  const measureRound = async (round: { server: RunningServer; cell: Cell }[], name: string) => {
    for (const { server, cell } of round) {
      const sample = await measure(server, client, workload.spec, workload.unit, workload.keepFilesUntilEnd);
      cell.samples.push(sample);
      log(`${workload.id} ${name} ${cell.label}: ${describe(sample, workload.unit)}`);
    }
  };
  // Rotate the order each round so no server always goes first (or last) after the others.
  const rotate = <T>(list: T[], by: number) => list.map((_, i) => list[(i + by) % list.length]!);
  try {
    for (let run = 0; run < options.runs; run++) {
      await measureRound(rotate(running, run), `run ${run + 1}/${options.runs}`);
    }
    // Other work on the machine steals CPU from one server's runs and not another's. Repeat the
    // runs it disturbed (up to as many extra rounds as planned ones) while the time budget lasts.
    for (let extra = 0; extra < options.runs && Date.now() < extraRunsDeadline; extra++) {
      const short = running.filter(
        ({ cell }) => cell.samples.filter((sample) => isClean(sample, cell)).length < options.runs,
      );
      if (short.length === 0) break;
      await measureRound(rotate(short, extra), `extra run ${extra + 1} (machine was busy)`);
    }
  } finally {
    await Promise.all(running.map(({ server }) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
  return { workload, cells };
}

async function runMemory(
  defs: ServerDef[],
  client: LoadClient,
  ferry: FerryProbe,
  smallRuns: number,
): Promise<MemoryResult[]> {
  const rows: MemoryResult[] = [];
  for (const def of defs.filter((d) => d.ferry)) {
    const row: MemoryResult = { server: def.id, label: def.label, small: [] };
    rows.push(row);
    const dir = mkdtempSync(path.join(tempRoot!, 'MEM-'));
    try {
      const prepared = await prepare(def, dir, client, ferry);
      if (typeof prepared === 'string') {
        row.unavailable = prepared;
        log(`MEM ${def.label}: unavailable — ${prepared.split('\n')[0]}`);
        continue;
      }
      try {
        // A single peak reading wobbles with garbage-collection timing, and a 16× longer upload
        // gets 16× more chances to catch a high one; several small runs even that out.
        for (let run = 0; run < smallRuns; run++) {
          const sample = await measure(prepared, client, memorySpecs.small, 'MB/s');
          row.small.push(sample);
          log(`MEM ${def.label} 256 MiB run ${run + 1}/${smallRuns}: ${describe(sample, 'MB/s')}`);
        }
        row.large = await measure(prepared, client, memorySpecs.large, 'MB/s');
        log(`MEM ${def.label} 4 GiB: ${describe(row.large, 'MB/s')}`);
      } finally {
        await prepared.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

function commitId(): string {
  try {
    const id = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: repoRoot,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    return dirty.trim() === '' ? id : `${id} (packages/ modified)`;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  const started = performance.now();
  extraRunsDeadline = Date.now() + 11 * 60 * 1000;
  tempRoot = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  const ferry = probeFerry();
  if (!ferry.available) log(`Ferry: ${ferry.reason}; its rows are reported as unavailable.`);
  const allDefs = serverDefs(ferry);
  const defs = options.servers.map((id) => allDefs[id]);
  const serverSections = options.sections.some(
    (section) => section !== 'CLIENT' && section !== 'WEB' && section !== 'S3',
  );
  const client = serverSections ? await startLoadClient(options.sliceSize) : undefined;
  const result: BenchResult = {
    environment: {
      date: new Date().toISOString().slice(0, 16).replace('T', ' '),
      commit: commitId(),
      node: process.versions.node,
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
      cores: os.availableParallelism(),
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      loadAverage: os.loadavg()[0]!.toFixed(1),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      runs: options.runs,
      maxOtherLoad: options.maxOtherLoad,
      durationSeconds: 0,
    },
    workloads: [],
    memory: [],
  };
  if (client !== undefined) {
    try {
      for (const workload of workloads({ w1Size: options.w1Size })) {
        if (!options.sections.includes(workload.id)) continue;
        log(`\n${workload.id}: ${workload.title}`);
        result.workloads.push(await runWorkload(workload, defs, client, options, ferry));
      }
      if (options.sections.includes('MEM') && defs.some((d) => d.ferry)) {
        log('\nMEM: peak RSS for one 256 MiB and one 4 GiB single-PATCH upload');
        result.memory = await runMemory(defs, client, ferry, options.runs);
      }
    } finally {
      client.close();
    }
  }
  if (options.sections.includes('CLIENT')) {
    log('\nCLIENT: upload clients side by side, on loopback and over an emulated long link');
    result.client = await runClientSection({
      size: options.clientSize,
      runs: options.clientRuns,
      tempDir: tempRoot,
      ferry,
      log,
    });
  }
  let web: WebSectionResult | undefined;
  if (options.sections.includes('WEB')) {
    log('\nWEB: the web app — its size, and Chromium uploading against the Node client');
    web = await runWebSection({
      size: options.webSize,
      runs: options.webRuns,
      tempDir: tempRoot,
      ferry,
      log,
    });
  }
  let s3Report: string | undefined;
  let s3Failed = false;
  if (options.sections.includes('S3')) {
    log("\nS3: uploads into the project's RGW — lib-storage, Ferry (tus, parts), @tus/server + s3-store");
    const s3 = await runS3Section({ size: options.s3Size, runs: options.runs, log });
    s3Failed = s3.rows.some((row) => row.note?.startsWith('failed') === true);
    s3Report = renderS3Section(s3);
  }
  result.environment.durationSeconds = (performance.now() - started) / 1000;
  const onlyS3 = options.sections.length === 1 && s3Report !== undefined;
  let report = onlyS3
    ? `${s3Report}\nCommand: \`${result.environment.command}\` (commit ${result.environment.commit}), ${result.environment.durationSeconds.toFixed(0)} s.\n`
    : web === undefined
      ? renderReport(result)
      : `${renderReport(result)}\n${renderWebSection(web).join('\n').trimEnd()}\n`;
  if (!onlyS3 && s3Report !== undefined) report = `${report}\n${s3Report}`;
  process.stdout.write(`\n${report}`);
  mkdirSync(path.dirname(options.out), { recursive: true });
  writeFileSync(options.out, report);
  const shown = path.relative(repoRoot, options.out);
  log(`\nReport written to ${shown.startsWith('..') ? options.out : shown}`);
  if (hasFailures(result) || webFailed(web) || s3Failed) {
    log(
      '\n*** THE BENCHMARK FAILED: a run errored or a stored file did not match what was sent (see FAILURES). ***',
    );
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    cleanUp();
    process.exit(code);
  },
  (error: unknown) => {
    log(String(error instanceof Error ? (error.stack ?? error.message) : error));
    cleanUp();
    process.exit(1);
  },
);

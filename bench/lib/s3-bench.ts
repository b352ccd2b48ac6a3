// The S3 section: uploads into one bucket of the project's own Ceph RGW (scripts/s3/start; a
// directory and port of its own, or FERRY_S3_DIR / FERRY_S3_PORT), side by side in one run:
// - the reference, @aws-sdk/lib-storage `Upload` straight to the bucket (8 MiB parts, 4 at a time):
//   what S3 itself takes from one client here;
// - Ferry presigned direct-to-bucket (the Ferry client, 8 MiB parts, 4 at a time);
// - Ferry with S3 storage, bytes through the server: the Ferry client over parts (4 at a time) and
//   the tus workloads W1–W3 (s3-workloads.ts) from the main benchmark's load client;
// - @tus/server with @tus/s3-store, the same W1–W3.
// Runs are interleaved (run 1 of every row, then run 2…) so a busy spell of a shared machine does not
// fall on one row. Every stored object's SHA-256 is checked against what was sent, then the object is
// deleted. Server RSS is the process's peak (VmHWM) of a fresh server per run; the single-stream
// rows are run once more at four times the base size to show whether memory grows with the object.
import { type ChildProcess, execFile, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { ClientKind, UploadJob, UploadReply } from '../client/upload-client.ts';
import { ferryClientBuild } from './client-bench.ts';
import { type LoadClient, startLoadClient } from './client-handle.ts';
import { formatSize, median, S3_TARGETS, type S3WorkloadId, s3Workloads } from './s3-workloads.ts';
import { type RunningServer, repoRoot, type ServerDef, startServer, track } from './servers.ts';
import type { LoadSpec } from './workloads.ts';

const MiB = 1024 * 1024;

export interface S3BenchOptions {
  /** Bytes of the base upload (W1–W3 each move this much); the memory runs use four times this. */
  size: number;
  runs: number;
  log: (line: string) => void;
}

export type S3Group = 'reference' | 'presigned' | 'ferry' | 'tus';

export interface S3Row {
  label: string;
  group: S3Group;
  /** The tus workload, or `parts` / `object` for the client rows. */
  workload: S3WorkloadId | 'parts' | 'object';
  /** MB/s of each run (10^6 bytes per second), empty when not available. */
  rates: number[];
  /** Seconds from the client's `complete` request to its answer, per run (Ferry client rows). */
  completeSeconds: number[];
  /** Server peak RSS at the base size (highest of the runs) and at four times it (MiB). */
  rss?: { base: number; large: number | undefined };
  note?: string;
}

export interface S3SectionResult {
  size: number;
  runs: number;
  rows: S3Row[];
  rgw: string;
  date: string;
  /** Seconds the whole section took. */
  seconds: number;
  /** The 1-minute load average before the section started, and the machine's CPUs. */
  loadBefore: number;
}

const rgwEnv = {
  FERRY_S3_DIR: process.env['FERRY_S3_DIR'] ?? path.join(os.tmpdir(), 'ferry-bench-rgw'),
  FERRY_S3_PORT: process.env['FERRY_S3_PORT'] ?? '7520',
};

function script(name: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [path.join(repoRoot, 'scripts/s3', name)],
      { env: { ...process.env, ...env }, timeout: 300_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`scripts/s3/${name}: ${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

function exportsOf(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) values[match[1]!] = match[2]!;
  }
  return values;
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function forkClient(kind: ClientKind, execArgv: string[], env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = fork(path.join(repoRoot, 'bench/client/upload-client.ts'), [kind], {
    cwd: repoRoot,
    execArgv,
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  track(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`upload client exited (${code}) before it was ready`)));
    child.once('message', () => resolve(child));
  });
}

async function runClient(
  kind: ClientKind,
  job: Omit<UploadJob, 'kind'>,
  execArgv: string[],
  env: NodeJS.ProcessEnv,
): Promise<UploadReply> {
  const child = await forkClient(kind, execArgv, env);
  try {
    return await new Promise<UploadReply>((resolve) => {
      child.once('message', (reply: UploadReply) => resolve(reply));
      child.send({ ...job, kind });
    });
  } finally {
    child.disconnect();
  }
}

/**
 * Whether @ferry/client offers presigned parts (its upload options have `presigned`). Read from its
 * sources, not imported: this process does not load the client it measures.
 */
function presignedAvailable(): boolean {
  try {
    const source = readFileSync(path.join(repoRoot, 'packages/client/src/core/upload.ts'), 'utf8');
    return /^\s*presigned\?:/m.test(source);
  } catch {
    return false;
  }
}

/** One row of the plan: how to run it once at a given size. */
interface PlannedRow {
  row: S3Row;
  /** Runs once more at four times the base size for the memory comparison. */
  large: boolean;
  available: boolean;
  once(size: number): Promise<{ rate: number; rss: number | undefined; completeSeconds?: number }>;
}

export async function runS3Section(options: S3BenchOptions): Promise<S3SectionResult> {
  const { log } = options;
  const started = performance.now();
  const loadBefore = os.loadavg()[0]!;
  const large = 4 * options.size;
  const memory = Math.max(4 * 1024 * MiB, 3 * large);
  const rgw = { ...rgwEnv, FERRY_S3_MEMORY_BYTES: String(memory) };
  log(`S3: starting the project's RGW (${rgw.FERRY_S3_DIR}, port ${rgw.FERRY_S3_PORT})`);
  const s3 = exportsOf(await script('start', rgw));
  const prefix = `bench-${process.pid}/`;
  const env = { ...process.env, ...s3, S3_BENCH_PREFIX: prefix };
  const bucket = s3['S3_BUCKET']!;
  const client = new S3Client({
    endpoint: s3['S3_ENDPOINT']!,
    region: s3['S3_REGION']!,
    forcePathStyle: true,
    credentials: { accessKeyId: s3['S3_ACCESS_KEY_ID']!, secretAccessKey: s3['S3_SECRET_ACCESS_KEY']! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const temp = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-s3-'));
  const execArgv = ferryClientBuild().execArgv;
  const files = new Map<number, { file: string; sha256: string }>();
  const source = (size: number) => {
    let known = files.get(size);
    if (known === undefined) {
      const file = path.join(temp, `source-${size}`);
      const hash = createHash('sha256');
      writeFileSync(file, '');
      const block = 16 * MiB;
      for (let at = 0; at < size; at += block) {
        const bytes = randomBytes(Math.min(block, size - at));
        hash.update(bytes);
        writeFileSync(file, bytes, { flag: 'a' });
      }
      known = { file, sha256: hash.digest('hex') };
      files.set(size, known);
    }
    return known;
  };
  /** The object must hold `size` bytes hashing to `sha256`; it is deleted either way. */
  const verify = async (key: string, size: number, sha256: string) => {
    const hash = createHash('sha256');
    let stored = 0;
    try {
      const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      for await (const chunk of answer.Body as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        stored += chunk.byteLength;
      }
    } finally {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => {});
    }
    if (stored !== size || hash.digest('hex') !== sha256) {
      throw new Error(`${key}: the stored object (${stored} bytes) is not what was sent (${size} bytes)`);
    }
  };

  const ferryServer: ServerDef = {
    id: 'ferry',
    label: 'Ferry (S3)',
    ferry: true,
    args: (dataDir) => [
      path.join(repoRoot, 'packages/cli/bin/ferry.js'),
      'serve',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--data-dir',
      dataDir,
      '--storage',
      's3',
      '--s3-endpoint',
      s3['S3_ENDPOINT']!,
      '--s3-bucket',
      bucket,
      '--s3-force-path-style',
      '--s3-key-prefix',
      prefix,
    ],
    storedFile: () => undefined,
    leftovers: () => [],
  };
  const tusServer: ServerDef = {
    id: 'tus',
    label: '@tus/server + s3-store',
    ferry: false,
    args: () => [path.join(repoRoot, 'bench/servers/tus-s3-server.ts'), '--port', '0'],
    storedFile: () => undefined,
    leftovers: () => [],
  };
  process.env['AWS_ACCESS_KEY_ID'] = s3['S3_ACCESS_KEY_ID'];
  process.env['AWS_SECRET_ACCESS_KEY'] = s3['S3_SECRET_ACCESS_KEY'];
  process.env['AWS_REGION'] = s3['S3_REGION'];
  for (const [name, value] of Object.entries({ ...s3, S3_BENCH_PREFIX: prefix })) process.env[name] = value;

  /** Runs `work` against a fresh server (none for serverless rows); its peak RSS after the work. */
  const withServer = async <T>(
    def: ServerDef | undefined,
    work: (server: RunningServer | undefined) => Promise<T>,
  ): Promise<{ value: T; rss: number | undefined }> => {
    const dataDir = mkdtempSync(path.join(temp, 'server-'));
    let server: RunningServer | undefined;
    try {
      if (def !== undefined) server = await startServer(def, dataDir);
      const value = await work(server);
      return { value, rss: server === undefined ? undefined : peakRssMiB(server.pids[0]!) };
    } finally {
      await server?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  };

  /** One upload of a file by one of the upload clients (lib-storage, the Ferry client). */
  const clientOnce =
    (kind: ClientKind, def: ServerDef | undefined, keyOf: (id: string) => string) => async (size: number) => {
      const { file, sha256 } = source(size);
      const { value: reply, rss } = await withServer(def, async (server) => {
        const origin = server === undefined ? 'http://127.0.0.1:9' : new URL(server.endpoint).origin;
        const answer = await runClient(kind, { origin, file, size }, execArgv, env);
        if (!answer.ok) throw new Error(answer.error);
        return answer;
      });
      await verify(keyOf(reply.id), size, sha256);
      return {
        rate: size / 1e6 / (reply.elapsedMs / 1000),
        rss,
        ...(reply.completeMs === undefined ? {} : { completeSeconds: reply.completeMs / 1000 }),
      };
    };

  let load: LoadClient | undefined;
  /** One batch of tus uploads by the load client (the main benchmark's). */
  const loadOnce =
    (def: ServerDef, spec: (size: number) => LoadSpec, keyOf: (id: string) => string) =>
    async (size: number) => {
      load ??= await startLoadClient(MiB);
      const batch = spec(size);
      const { value: reply, rss } = await withServer(def, async (server) => {
        const answer = await load!.run(server!.endpoint, batch);
        if (!answer.ok) throw new Error(answer.error);
        return answer;
      });
      for (const upload of reply.uploads) await verify(keyOf(upload.id), upload.size, upload.sha256);
      return { rate: reply.bytes / 1e6 / (reply.elapsedMs / 1000), rss };
    };

  const ferryKey = (id: string) => prefix + id;
  const tusKey = (id: string) => decodeURIComponent(id);
  const row = (label: string, group: S3Group, workload: S3Row['workload']): S3Row => ({
    label,
    group,
    workload,
    rates: [],
    completeSeconds: [],
  });
  const presigned = presignedAvailable();
  const plan: PlannedRow[] = [
    {
      row: row('@aws-sdk/lib-storage Upload straight to the bucket (reference)', 'reference', 'object'),
      large: false,
      available: true,
      once: clientOnce('lib-storage', undefined, (id) => id),
    },
    {
      row: row('Ferry presigned direct-to-bucket, Ferry client, 4 at a time', 'presigned', 'parts'),
      large: true,
      available: presigned,
      once: clientOnce('ferry-presigned-4', ferryServer, ferryKey),
    },
    {
      row: row('Ferry (S3) through the server, Ferry client over parts, 4 at a time', 'ferry', 'parts'),
      large: true,
      available: true,
      once: clientOnce('ferry-parts-4', ferryServer, ferryKey),
    },
  ];
  for (const workload of s3Workloads(options.size)) {
    const spec = (size: number) => s3Workloads(size).find((entry) => entry.id === workload.id)!.spec;
    plan.push({
      row: row(`Ferry (S3) through the server, tus ${workload.id}: ${workload.title}`, 'ferry', workload.id),
      large: workload.id === 'W1',
      available: true,
      once: loadOnce(ferryServer, spec, ferryKey),
    });
  }
  for (const workload of s3Workloads(options.size)) {
    const spec = (size: number) => s3Workloads(size).find((entry) => entry.id === workload.id)!.spec;
    plan.push({
      row: row(`@tus/server + @tus/s3-store, tus ${workload.id}: ${workload.title}`, 'tus', workload.id),
      large: workload.id === 'W1',
      available: true,
      once: loadOnce(tusServer, spec, tusKey),
    });
  }

  const attempt = async (entry: PlannedRow, size: number) => {
    try {
      return await entry.once(size);
    } catch (error) {
      entry.row.note = `failed: ${(error as Error).message.split('\n')[0]}`;
      log(`S3: ${entry.row.label} (${formatSize(size)}): ${entry.row.note}`);
      return undefined;
    }
  };
  try {
    for (const entry of plan) {
      if (!entry.available) {
        log(`S3: ${entry.row.label}: not available (the client has no presigned transport)`);
        entry.row.note = 'not available';
      }
    }
    for (let run = 0; run < options.runs; run++) {
      for (const entry of plan) {
        if (!entry.available || entry.row.note?.startsWith('failed')) continue;
        const result = await attempt(entry, options.size);
        if (result === undefined) continue;
        entry.row.rates.push(result.rate);
        if (result.completeSeconds !== undefined) entry.row.completeSeconds.push(result.completeSeconds);
        if (result.rss !== undefined) {
          entry.row.rss = { base: Math.max(entry.row.rss?.base ?? 0, result.rss), large: undefined };
        }
        log(
          `S3: run ${run + 1}: ${entry.row.label}: ${result.rate.toFixed(0)} MB/s` +
            (result.completeSeconds !== undefined
              ? `, complete ${result.completeSeconds.toFixed(2)} s`
              : '') +
            (result.rss !== undefined ? `, server peak RSS ${result.rss.toFixed(0)} MiB` : ''),
        );
      }
    }
    for (const entry of plan) {
      if (!entry.large || !entry.available || entry.row.rss === undefined) continue;
      // Let RGW's garbage collector give the RAM of deleted objects back before a large run.
      await sleep(12_000);
      const result = await attempt(entry, large);
      if (result === undefined) continue;
      entry.row.rss.large = result.rss;
      log(
        `S3: ${entry.row.label} at ${formatSize(large)}: ${result.rate.toFixed(0)} MB/s, server peak RSS ${result.rss?.toFixed(0)} MiB`,
      );
    }
  } finally {
    load?.close();
    client.destroy();
    rmSync(temp, { recursive: true, force: true });
    await script('stop', rgw).catch((error) => log(String(error)));
  }
  return {
    size: options.size,
    runs: options.runs,
    rows: plan.map((entry) => entry.row),
    rgw: 'Ceph 16.2 RGW (scripts/s3/start, OSD in RAM, 127.0.0.1)',
    date: new Date().toISOString(),
    seconds: (performance.now() - started) / 1000,
    loadBefore,
  };
}

const isFlat = (rss: { base: number; large: number | undefined }) =>
  rss.large !== undefined && Math.abs(rss.large - rss.base) <= S3_TARGETS.rssFlat * rss.base;

/** Each target of the requirement, met or missed, with the numbers. */
export function s3Verdicts(result: S3SectionResult): string[] {
  const reference = median(result.rows.find((row) => row.group === 'reference')?.rates ?? []);
  const ratio = (row: S3Row | undefined) => (row === undefined ? Number.NaN : median(row.rates) / reference);
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const lines: string[] = [];
  const presigned = result.rows.find((row) => row.group === 'presigned');
  if (presigned !== undefined && presigned.rates.length > 0) {
    const r = ratio(presigned);
    const complete = median(presigned.completeSeconds);
    const sending =
      presigned.completeSeconds.length === presigned.rates.length
        ? median(
            presigned.rates.map(
              (value, i) => result.size / 1e6 / (result.size / 1e6 / value - presigned.completeSeconds[i]!),
            ),
          ) / reference
        : Number.NaN;
    lines.push(
      `- presigned ≥ ${S3_TARGETS.presigned}× lib-storage: ${mark(r >= S3_TARGETS.presigned)} (${r.toFixed(2)}×` +
        (Number.isFinite(complete)
          ? `; \`complete\`, which reads the object back to verify its SHA-256, took ${complete.toFixed(2)} s of each upload; sending the parts alone ran at ${sending.toFixed(2)}×`
          : '') +
        ')',
    );
  }
  const through = result.rows.filter((row) => row.group === 'ferry' && row.rates.length > 0);
  const slowest = through.reduce<S3Row | undefined>(
    (low, row) => (low === undefined || ratio(row) < ratio(low) ? row : low),
    undefined,
  );
  if (slowest !== undefined) {
    const all = through.map((row) => `${row.workload} ${ratio(row).toFixed(2)}×`).join(', ');
    lines.push(
      `- through the server ≥ ${S3_TARGETS.throughServer}× lib-storage on every row: ${mark(ratio(slowest) >= S3_TARGETS.throughServer)} (${all})`,
    );
  }
  const versus: string[] = [];
  let ahead = true;
  for (const id of ['W1', 'W2', 'W3'] as const) {
    const ferry = result.rows.find((row) => row.group === 'ferry' && row.workload === id);
    const tus = result.rows.find((row) => row.group === 'tus' && row.workload === id);
    if (ferry === undefined || tus === undefined || ferry.rates.length === 0) continue;
    const f = median(ferry.rates);
    const t = median(tus.rates);
    if (!(f > t)) ahead = false;
    versus.push(`${id} ${f.toFixed(0)} vs ${Number.isFinite(t) ? t.toFixed(0) : 'failed'} MB/s`);
  }
  if (versus.length > 0)
    lines.push(`- Ferry ahead of @tus/s3-store on every workload: ${mark(ahead)} (${versus.join('; ')})`);
  const measured = result.rows.filter((row) => row.group !== 'tus' && row.rss?.large !== undefined);
  if (measured.length > 0) {
    const flat = measured.every((row) => isFlat(row.rss!));
    const each = measured
      .map(
        (row) =>
          `${row.group === 'presigned' ? 'presigned' : row.workload} ${row.rss!.base.toFixed(0)} → ${row.rss!.large!.toFixed(0)} MiB`,
      )
      .join('; ');
    lines.push(
      `- Ferry server RSS flat, ${formatSize(result.size)} vs ${formatSize(4 * result.size)} within ${S3_TARGETS.rssFlat * 100} %: ${mark(flat)} (${each})`,
    );
  }
  return lines;
}

export function renderS3Section(result: S3SectionResult): string {
  const reference = median(result.rows.find((row) => row.group === 'reference')?.rates ?? []);
  const size = formatSize(result.size);
  const big = formatSize(4 * result.size);
  const lines = [
    '# Benchmark: S3',
    '',
    `${result.date}, ${result.rgw}, ${os.cpus().length} cores, shared with other work (1-minute load`,
    `average ${result.loadBefore.toFixed(1)} when the section began). Each row moves ${size} into the bucket per run;`,
    `${result.runs} runs, interleaved across rows. Every object's SHA-256 is checked against what was sent.`,
    'MB/s = 10^6 bytes/s, median of the runs (of two runs: their mean), from the first request to the',
    'last answer (for the Ferry client: `complete` answered). Ratio against @aws-sdk/lib-storage',
    `straight to the bucket. Server peak RSS: VmHWM of a fresh server process, at ${size} and (single`,
    `streams) at ${big}; flat = within ${S3_TARGETS.rssFlat * 100} %.`,
    '',
    '`complete` s: from the Ferry client\'s `complete` request to its answer (median); "until complete":',
    'the MB/s of the same runs without that time, i.e. of sending the parts alone.',
    '',
    `| client → server | MB/s (runs) | vs lib-storage | \`complete\` s | MB/s until complete | server RSS ${size} | server RSS ${big} | flat? |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of result.rows) {
    if (row.rates.length === 0) {
      lines.push(`| ${row.label} | ${row.note ?? 'not available'} | | | | | | |`);
      continue;
    }
    const rate = median(row.rates);
    const runs = row.rates.map((value) => value.toFixed(0)).join(', ');
    const complete = row.completeSeconds.length > 0 ? median(row.completeSeconds).toFixed(2) : '—';
    const sending =
      row.completeSeconds.length === row.rates.length && row.rates.length > 0
        ? median(
            row.rates.map(
              (value, i) => result.size / 1e6 / (result.size / 1e6 / value - row.completeSeconds[i]!),
            ),
          ).toFixed(0)
        : '—';
    const rss = row.rss;
    const flat = rss?.large === undefined ? '' : isFlat(rss) ? 'yes' : 'no';
    lines.push(
      `| ${row.label} | ${rate.toFixed(0)} (${runs}) | ${(rate / reference).toFixed(2)} | ${complete} | ${sending} | ${rss ? `${rss.base.toFixed(0)} MiB` : '—'} | ${rss?.large !== undefined ? `${rss.large.toFixed(0)} MiB` : '—'} | ${flat} |${row.note ? ` ${row.note}` : ''}`,
    );
  }
  lines.push('', 'Targets:', '', ...s3Verdicts(result));
  return `${lines.join('\n')}\n`;
}

// The S3 section: uploads into one bucket of the project's own Ceph RGW (scripts/s3/start, a
// directory and port of its own), side by side in one run. The reference is @aws-sdk/lib-storage
// `Upload` straight to the bucket (8 MiB parts, 4 at a time): what S3 itself takes from one client
// here. Then Ferry with S3 storage (a tus single stream, and the Ferry client over parts), @tus/server
// with @tus/s3-store (one stream), and Ferry's presigned direct-to-bucket parts when the client has
// them. Every stored object's SHA-256 is checked against the source, then the object is deleted.
// Server RSS is read as the process's peak (VmHWM) at the base size and at four times it.
import { type ChildProcess, execFile, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { ClientKind, UploadJob, UploadReply } from '../client/upload-client.ts';
import { ferryClientBuild } from './client-bench.ts';
import { type RunningServer, repoRoot, type ServerDef, startServer, track } from './servers.ts';

const MiB = 1024 * 1024;

export interface S3BenchOptions {
  /** Bytes of the base upload; the memory comparison also runs four times this. */
  size: number;
  runs: number;
  log: (line: string) => void;
}

export interface S3Row {
  label: string;
  /** MB/s of each run (10^6 bytes per second), empty when not available. */
  rates: number[];
  /** Server peak RSS at the base size and at four times it (MiB); undefined for serverless rows. */
  rss?: { base: number; large: number | undefined };
  note?: string;
}

export interface S3SectionResult {
  size: number;
  rows: S3Row[];
  rgw: string;
  date: string;
}

const rgwEnv = {
  FERRY_S3_DIR: path.join(os.tmpdir(), 'ferry-bench-rgw'),
  FERRY_S3_PORT: '7520',
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

export async function runS3Section(options: S3BenchOptions): Promise<S3SectionResult> {
  const { log } = options;
  const large = 4 * options.size;
  const memory = Math.max(4 * 1024 * MiB, 3 * large);
  const rgw = { ...rgwEnv, FERRY_S3_MEMORY_BYTES: String(memory) };
  log(`S3: starting the project's RGW (${rgw.FERRY_S3_DIR}, port ${rgw.FERRY_S3_PORT})`);
  const s3 = exportsOf(await script('start', rgw));
  const prefix = `bench-${process.pid}/`;
  const env = { ...process.env, ...s3, S3_BENCH_PREFIX: prefix };
  const client = new S3Client({
    endpoint: s3['S3_ENDPOINT']!,
    region: s3['S3_REGION']!,
    forcePathStyle: true,
    credentials: { accessKeyId: s3['S3_ACCESS_KEY_ID']!, secretAccessKey: s3['S3_SECRET_ACCESS_KEY']! },
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
  const verify = async (key: string, sha256: string) => {
    const answer = await client.send(new GetObjectCommand({ Bucket: s3['S3_BUCKET']!, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of answer.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
    await client.send(new DeleteObjectCommand({ Bucket: s3['S3_BUCKET']!, Key: key }));
    if (hash.digest('hex') !== sha256) throw new Error(`${key}: the stored object is not the source`);
  };

  const ferryServer = (): ServerDef => ({
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
      s3['S3_BUCKET']!,
      '--s3-force-path-style',
      '--s3-key-prefix',
      prefix,
    ],
    storedFile: () => undefined,
    leftovers: () => [],
  });
  const tusServer = (): ServerDef => ({
    id: 'tus',
    label: '@tus/server + s3-store',
    ferry: false,
    args: () => [path.join(repoRoot, 'bench/servers/tus-s3-server.ts'), '--port', '0'],
    storedFile: () => undefined,
    leftovers: () => [],
  });
  process.env['AWS_ACCESS_KEY_ID'] = s3['S3_ACCESS_KEY_ID'];
  process.env['AWS_SECRET_ACCESS_KEY'] = s3['S3_SECRET_ACCESS_KEY'];
  process.env['AWS_REGION'] = s3['S3_REGION'];
  for (const [name, value] of Object.entries({ ...s3, S3_BENCH_PREFIX: prefix })) process.env[name] = value;

  /** One upload of `size` bytes; MB/s and the server's peak RSS (a fresh server per run). */
  const once = async (
    kind: ClientKind,
    def: ServerDef | undefined,
    size: number,
    keyOf: (id: string) => string,
  ): Promise<{ rate: number; rss: number | undefined }> => {
    const { file, sha256 } = source(size);
    const dataDir = mkdtempSync(path.join(temp, 'server-'));
    let server: RunningServer | undefined;
    try {
      if (def !== undefined) server = await startServer(def, dataDir);
      const origin = server === undefined ? 'http://127.0.0.1:9' : new URL(server.endpoint).origin;
      const reply = await runClient(kind, { origin, file, size }, execArgv, env);
      if (!reply.ok) throw new Error(reply.error);
      const rss = server === undefined ? undefined : peakRssMiB(server.pids[0]!);
      await verify(keyOf(reply.id), sha256);
      return { rate: size / 1e6 / (reply.elapsedMs / 1000), rss };
    } finally {
      await server?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  };

  const presigned = presignedAvailable();
  const plan: Array<{
    label: string;
    kind: ClientKind;
    server: (() => ServerDef) | undefined;
    key: (id: string) => string;
    available: boolean;
  }> = [
    {
      label: '@aws-sdk/lib-storage Upload (reference)',
      kind: 'lib-storage',
      server: undefined,
      key: (id) => id,
      available: true,
    },
    {
      label: 'Ferry (S3), tus single stream',
      kind: 'raw',
      server: ferryServer,
      key: (id) => prefix + id,
      available: true,
    },
    {
      label: 'Ferry (S3), Ferry client over parts, 4 at a time',
      kind: 'ferry-parts-4',
      server: ferryServer,
      key: (id) => prefix + id,
      available: true,
    },
    {
      label: '@tus/server + @tus/s3-store, tus single stream',
      kind: 'raw',
      server: tusServer,
      key: (id) => decodeURIComponent(id),
      available: true,
    },
    {
      label: 'Ferry presigned direct-to-bucket, 4 at a time',
      kind: 'ferry-presigned-4',
      server: ferryServer,
      key: (id) => prefix + id,
      available: presigned,
    },
  ];
  const rows: S3Row[] = [];
  try {
    for (const entry of plan) {
      if (!entry.available) {
        log(`S3: ${entry.label}: not available (the client has no presigned transport)`);
        rows.push({ label: entry.label, rates: [], note: 'not available' });
        continue;
      }
      const row: S3Row = { label: entry.label, rates: [] };
      try {
        let baseRss = 0;
        for (let run = 0; run < options.runs; run++) {
          const result = await once(entry.kind, entry.server?.(), options.size, entry.key);
          row.rates.push(result.rate);
          baseRss = Math.max(baseRss, result.rss ?? 0);
          log(
            `S3: ${entry.label}: ${result.rate.toFixed(0)} MB/s${result.rss ? `, server peak RSS ${result.rss.toFixed(0)} MiB` : ''}`,
          );
        }
        if (entry.server !== undefined) {
          // Let RGW's garbage collector give the RAM of deleted objects back before the large run.
          if (large >= 1024 * MiB) await sleep(12_000);
          const result = await once(entry.kind, entry.server(), large, entry.key);
          row.rss = { base: baseRss, large: result.rss };
          log(
            `S3: ${entry.label} at ${large / MiB} MiB: ${result.rate.toFixed(0)} MB/s, server peak RSS ${result.rss?.toFixed(0)} MiB`,
          );
        }
      } catch (error) {
        row.note = `failed: ${(error as Error).message.split('\n')[0]}`;
        log(`S3: ${entry.label}: ${row.note}`);
      }
      rows.push(row);
    }
  } finally {
    client.destroy();
    rmSync(temp, { recursive: true, force: true });
    await script('stop', rgw).catch((error) => log(String(error)));
  }
  return {
    size: options.size,
    rows,
    rgw: 'Ceph 16.2 RGW (scripts/s3/start, OSD in RAM, 127.0.0.1)',
    date: new Date().toISOString(),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length / 2;
  return Number.isInteger(middle) ? (sorted[middle - 1]! + sorted[middle]!) / 2 : sorted[Math.floor(middle)]!;
};

export function renderS3Section(result: S3SectionResult): string {
  const reference = median(result.rows[0]?.rates ?? []);
  const size = (bytes: number) => (bytes >= 1024 * MiB ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`);
  const lines = [
    '# Benchmark: S3',
    '',
    `${result.date}, ${result.rgw}, ${os.cpus().length} cores. One upload of ${size(result.size)} per run,`,
    `every object's SHA-256 checked against the source. MB/s = 10^6 bytes/s, median of the runs;`,
    `ratio against @aws-sdk/lib-storage straight to the bucket. Server peak RSS (VmHWM of a fresh`,
    `server process) at ${size(result.size)} and at ${size(4 * result.size)}: flat means within 10 %.`,
    '',
    `| client → server | MB/s (runs) | vs lib-storage | server RSS ${size(result.size)} | server RSS ${size(4 * result.size)} | flat? |`,
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of result.rows) {
    if (row.rates.length === 0) {
      lines.push(`| ${row.label} | ${row.note ?? 'not available'} | | | | |`);
      continue;
    }
    const rate = median(row.rates);
    const runs = row.rates.map((value) => value.toFixed(0)).join(', ');
    const rss = row.rss;
    const flat =
      rss?.large === undefined ? '' : Math.abs(rss.large - rss.base) <= 0.1 * rss.base ? 'yes' : 'no';
    lines.push(
      `| ${row.label} | ${rate.toFixed(0)} (${runs}) | ${(rate / reference).toFixed(2)} | ${rss ? `${rss.base.toFixed(0)} MiB` : '—'} | ${rss?.large !== undefined ? `${rss.large.toFixed(0)} MiB` : '—'} | ${flat} |${row.note ? ` ${row.note}` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

// The workloads of the benchmark, as plain data shared by the harness and the load client.

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export type WorkloadId = 'W1' | 'W2' | 'W3' | 'W4';

/** One batch of tus uploads: each upload is a POST (creation) followed by its PATCHes. */
export interface LoadSpec {
  /** Number of uploads. */
  uploads: number;
  /** Bytes per upload (`Upload-Length`). */
  uploadSize: number;
  /** Bytes per PATCH request; equal to `uploadSize` for a single PATCH. */
  patchSize: number;
  /** Uploads in flight at once. */
  concurrency: number;
  /** Every request of the batch is aborted after this many milliseconds. */
  timeoutMs: number;
}

export interface Workload {
  id: WorkloadId;
  title: string;
  /** Headline unit: payload throughput, or finished uploads per second for many small files. */
  unit: 'MB/s' | 'uploads/s';
  spec: LoadSpec;
  /**
   * Keep each run's stored files (after checking them) until the workload ends, instead of deleting
   * them right after the run. For many small files: on a journal-less ext4 (this development VM),
   * every file created within a minute of thousands of deletions scans the recently deleted inodes
   * first, so deleting one server's files would slow the next server's run (see docs/benchmarks.md).
   */
  keepFilesUntilEnd?: boolean;
}

export function formatBytes(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

const tenMinutes = 10 * 60 * 1000;

export function workloads(options: { w1Size: number }): Workload[] {
  return [
    {
      id: 'W1',
      title: `one ${formatBytes(options.w1Size)} upload in a single PATCH`,
      unit: 'MB/s',
      spec: {
        uploads: 1,
        uploadSize: options.w1Size,
        patchSize: options.w1Size,
        concurrency: 1,
        timeoutMs: tenMinutes,
      },
    },
    {
      id: 'W2',
      title: 'one 1 GiB upload in 8 MiB PATCHes',
      unit: 'MB/s',
      spec: { uploads: 1, uploadSize: GiB, patchSize: 8 * MiB, concurrency: 1, timeoutMs: tenMinutes },
    },
    {
      id: 'W3',
      title: '64 concurrent uploads of 16 MiB, one PATCH each',
      unit: 'MB/s',
      spec: {
        uploads: 64,
        uploadSize: 16 * MiB,
        patchSize: 16 * MiB,
        concurrency: 64,
        timeoutMs: tenMinutes,
      },
    },
    {
      id: 'W4',
      title: '2,000 uploads of 64 KiB, 32 at a time (POST then PATCH)',
      unit: 'uploads/s',
      spec: {
        uploads: 2000,
        uploadSize: 64 * KiB,
        patchSize: 64 * KiB,
        concurrency: 32,
        timeoutMs: tenMinutes,
      },
      keepFilesUntilEnd: true,
    },
  ];
}

/** Sent to each server before its first measured run, so both sides are past JIT warm-up. */
export const warmUpSpec: LoadSpec = {
  uploads: 48,
  uploadSize: 2 * MiB,
  patchSize: MiB,
  concurrency: 8,
  timeoutMs: 60_000,
};

/** Memory flatness: peak RSS for one small and one large single-PATCH upload. */
export const memorySpecs = {
  small: { uploads: 1, uploadSize: 256 * MiB, patchSize: 256 * MiB, concurrency: 1, timeoutMs: tenMinutes },
  large: { uploads: 1, uploadSize: 4 * GiB, patchSize: 4 * GiB, concurrency: 1, timeoutMs: tenMinutes },
} satisfies Record<string, LoadSpec>;

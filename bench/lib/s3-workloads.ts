// The S3 section's workloads and targets, as plain data. The tus shapes W1–W3 of the main benchmark
// (workloads.ts) are scaled to the section's base size S (`--s3-size`, default 1 GiB), so that each
// workload moves S bytes into the bucket:
//   W1  one upload of S in a single PATCH                 (main bench: one upload in one PATCH)
//   W2  one upload of S in 8 MiB PATCHes                  (main bench: 1 GiB in 8 MiB PATCHes)
//   W3  64 concurrent uploads of S/64, one PATCH each     (main bench: 64 × 16 MiB, = S at 1 GiB)
// At the default S = 1 GiB, W2 and W3 are exactly the main benchmark's. W4 (2,000 uploads of
// 64 KiB) is left out: it measures per-request cost, which S3 round trips (a multipart upload per
// upload) dominate for every server alike, not what the S3 stores do with bytes.
import type { LoadSpec } from './workloads.ts';

const MiB = 1024 * 1024;
const tenMinutes = 10 * 60 * 1000;

export type S3WorkloadId = 'W1' | 'W2' | 'W3';

export interface S3Workload {
  id: S3WorkloadId;
  title: string;
  spec: LoadSpec;
}

export function s3Workloads(size: number): S3Workload[] {
  const each = Math.max(MiB, Math.floor(size / 64));
  return [
    {
      id: 'W1',
      title: `one ${formatSize(size)} upload in a single PATCH`,
      spec: { uploads: 1, uploadSize: size, patchSize: size, concurrency: 1, timeoutMs: tenMinutes },
    },
    {
      id: 'W2',
      title: `one ${formatSize(size)} upload in 8 MiB PATCHes`,
      spec: { uploads: 1, uploadSize: size, patchSize: 8 * MiB, concurrency: 1, timeoutMs: tenMinutes },
    },
    {
      id: 'W3',
      title: `64 concurrent uploads of ${formatSize(each)}, one PATCH each`,
      spec: { uploads: 64, uploadSize: each, patchSize: each, concurrency: 64, timeoutMs: tenMinutes },
    },
  ];
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0) return `${bytes / 1024 / MiB} GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB} MiB`;
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** The requirement's targets, as ratios against @aws-sdk/lib-storage straight to the bucket. */
export const S3_TARGETS = {
  /** Ferry presigned direct-to-bucket, same part size and concurrency. */
  presigned: 0.95,
  /** Ferry with S3 storage, bytes through the server (tus W1–W3 and parts). */
  throughServer: 0.85,
  /** Peak RSS at 4× the base size within this fraction of the base size's. */
  rssFlat: 0.1,
} as const;

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length / 2;
  return Number.isInteger(middle) ? (sorted[middle - 1]! + sorted[middle]!) / 2 : sorted[Math.floor(middle)]!;
};

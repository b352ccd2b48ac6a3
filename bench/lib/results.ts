// What the harness records, run by run, for the report.
import type { ClientKind } from '../client/upload-client.ts';
import type { ServerId } from './servers.ts';
import type { Workload } from './workloads.ts';

export interface RunSample {
  ok: boolean;
  /** Why the run failed (protocol error, server exit, timeout); hash mismatches are in `failures`. */
  error?: string;
  seconds: number;
  /** In the workload's unit: MB/s (10^6 bytes per second of payload) or finished uploads per second. */
  throughput: number;
  serverCpuSeconds: number;
  /** Server RSS when the run began (after warm-up and earlier runs). */
  startRssMiB: number;
  peakRssMiB: number;
  peakMethod: 'hwm' | 'poll';
  clientCpuSeconds: number;
  /** Share of the machine's CPU (0..1) that processes outside the benchmark used during the run. */
  otherLoad: number;
  /** Stored files whose size and SHA-256 matched what the client sent. */
  verified: number;
  /** One line per stored file that did not match: the bench fails loudly on any. */
  failures: string[];
}

export interface Cell {
  server: ServerId;
  label: string;
  /** Set when the server could not be started or warmed up; then there are no samples. */
  unavailable?: string;
  samples: RunSample[];
  /** Runs during which other processes used more of the CPU than this (0..1) are left out when clean ones exist. */
  maxOtherLoad: number;
}

export interface WorkloadResult {
  workload: Workload;
  cells: Cell[];
}

export interface MemoryResult {
  server: ServerId;
  label: string;
  unavailable?: string;
  /** Runs of one 256 MiB upload each; the reference is the highest peak among them. */
  small: RunSample[];
  /** One 4 GiB upload. */
  large?: RunSample;
}

export interface BenchEnvironment {
  date: string;
  commit: string;
  node: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  /** 1-minute load average when the bench started: other work on the machine skews throughput. */
  loadAverage: string;
  command: string;
  runs: number;
  maxOtherLoad: number;
  durationSeconds: number;
}

export interface BenchResult {
  environment: BenchEnvironment;
  workloads: WorkloadResult[];
  memory: MemoryResult[];
  /** The client section, when it ran. */
  client?: ClientSectionResult;
}

/** The client section: plain loopback, and the long link the fault proxy emulates. */
export type LinkId = 'loopback' | 'long-link';

/** One upload of the client section: one client process, one fresh server. */
export interface ClientSample {
  ok: boolean;
  /** Why the upload failed (client error, timeout, server exit). */
  error?: string;
  seconds: number;
  /** MB/s: 10^6 bytes of the file per second, from the client's start until it reported success. */
  throughput: number;
  /** User + system CPU of the client process (every thread) during the upload. */
  clientCpuSeconds: number;
  clientStartRssMiB: number;
  clientPeakRssMiB: number;
  peakMethod: 'hwm' | 'poll';
  serverCpuSeconds: number;
  /** CPU of the proxy process during the upload (0 on loopback). */
  proxyCpuSeconds: number;
  /** Share of the machine's CPU (0..1) used by processes outside the benchmark. */
  otherLoad: number;
  /** Requests the client said it retried (the Ferry client's `retry` events). */
  retries: number;
  /** Seconds from the start until the first body byte went out (the Ferry client fingerprints first). */
  firstByteSeconds?: number;
  /** Ferry parts: seconds of the `complete` call (the server finishes the whole-file SHA-256 and moves the file). */
  completeSeconds?: number;
  /** Request-body bytes the proxy passed to the server (long link only). */
  bodyBytesThroughProxy?: number;
  /** The stored file had the source's size and SHA-256. */
  verified: boolean;
  /** Why it did not verify. */
  failure?: string;
}

export interface ClientCell {
  client: ClientKind;
  label: string;
  samples: ClientSample[];
}

export interface ClientLinkResult {
  link: LinkId;
  title: string;
  cells: ClientCell[];
}

export interface ClientSectionResult {
  /** Bytes of the uploaded file. */
  size: number;
  sourceSha256: string;
  runs: Record<LinkId, number>;
  links: ClientLinkResult[];
  /** Why the section could not run (Ferry unavailable). */
  unavailable?: string;
  /** Which build of @ferry/client the client processes loaded. */
  ferryClientBuild?: string;
  seconds: number;
}

/** Client runs that completed and whose stored file matched the source. */
export function goodClientSamples(cell: ClientCell | undefined): ClientSample[] {
  return cell?.samples.filter((sample) => sample.ok && sample.verified) ?? [];
}

/** Runs that completed with every stored file verified. */
export function goodSamples(cell: Cell | undefined): RunSample[] {
  return cell?.samples.filter((sample) => sample.ok && sample.failures.length === 0) ?? [];
}

export function isClean(sample: RunSample, cell: Cell): boolean {
  return sample.ok && sample.failures.length === 0 && sample.otherLoad <= cell.maxOtherLoad;
}

/** The runs the throughput and CPU figures come from: the clean good runs, or all good runs if none is clean. */
export function usedSamples(cell: Cell | undefined): RunSample[] {
  if (cell === undefined) return [];
  const clean = cell.samples.filter((sample) => isClean(sample, cell));
  return clean.length > 0 ? clean : goodSamples(cell);
}

export function hasFailures(result: BenchResult): boolean {
  const samples = [
    ...result.workloads.flatMap((w) => w.cells.flatMap((c) => c.samples)),
    ...result.memory.flatMap((m) => [...m.small, m.large].filter((s) => s !== undefined)),
  ];
  const clientSamples = result.client?.links.flatMap((l) => l.cells.flatMap((c) => c.samples)) ?? [];
  return (
    samples.some((sample) => !sample.ok || sample.failures.length > 0) ||
    clientSamples.some((sample) => !sample.ok || !sample.verified)
  );
}

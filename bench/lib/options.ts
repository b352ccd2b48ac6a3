// Command-line options of `npm run bench -- ...`.
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { LinkId } from './results.ts';
import { repoRoot, type ServerId, serverIds } from './servers.ts';
import { GiB, MiB, type WorkloadId } from './workloads.ts';

export type Section = WorkloadId | 'MEM' | 'CLIENT' | 'WEB' | 'S3';
const sections: readonly Section[] = ['W1', 'W2', 'W3', 'W4', 'MEM', 'CLIENT', 'WEB', 'S3'];
/** S3 starts its own RGW and stores several GiB in its RAM: only with --only s3. */
const defaultSections: readonly Section[] = sections.filter((section) => section !== 'S3');

export interface BenchOptions {
  runs: number;
  sections: Section[];
  servers: ServerId[];
  quick: boolean;
  /** Bytes of the W1 upload: 1 GiB, or 256 MiB with --quick. */
  w1Size: number;
  /** Largest slice the client hands to one socket write. */
  sliceSize: number;
  /** Runs during which other processes used more of the CPU than this share are repeated. */
  maxOtherLoad: number;
  /** Bytes of the client section's file: 1 GiB, or 256 MiB with --quick. */
  clientSize: number;
  /** Runs per client in the client section, per link. */
  clientRuns: Record<LinkId, number>;
  /** Bytes of the web section's file: 1 GiB, or 256 MiB with --quick. */
  webSize: number;
  /** Runs per client and protocol in the web section. */
  webRuns: number;
  /** Bytes of the S3 section's upload (its memory comparison also runs 4× this): 1 GiB, 256 MiB with --quick. */
  s3Size: number;
  out: string;
}

export const usage = `Usage: npm run bench -- [options]

  --runs N           measured runs per server and workload (default 3, at least 1)
  --only LIST        sections to run, comma-separated: W1,W2,W3,W4,MEM,CLIENT,WEB (default: all;
                     case does not matter: --only client)
  --servers LIST     servers, comma-separated: ferry, ferry-sha256, tus, node-discard, node-fs
                     (aliases: hash = ferry-sha256, discard = node-discard, fs = node-fs; default: all)
  --quick            smoke test: 1 run of W1 with a 256 MiB upload (unless --only/--runs say otherwise)
  --slice BYTES      largest body slice the client writes at once, 65536..1048576 (default 1048576)
  --max-other-load P  a run during which other processes used more than P % of the CPU is not
                     counted when clean runs exist, and is repeated while time allows (default 25; 100 = off)
  --client-size SIZE file size of the client section: bytes or a unit, e.g. 256MiB, 1GiB
                     (default 1GiB; 256MiB with --quick)
  --client-runs N    runs per client in the client section, on each link (default: 5 on loopback,
                     1 on the emulated long link)
  --web-size SIZE    file size of the web section (Chromium and Node upload it): bytes or a unit
                     (default 1GiB; 256MiB with --quick)
  --web-runs N       runs per client and protocol in the web section (default 1)
  --s3-size SIZE     upload size of the S3 section (only with --only s3; it starts its own RGW);
                     server RSS is also measured at 4 × SIZE (default 1GiB; 256MiB with --quick)
  --out FILE         where the markdown report goes (default bench/results/latest.md;
                     bench/results/client.md when the client section runs alone,
                     bench/results/web.md when the web section does)
  --help             this text
`;

const aliases: Record<string, ServerId> = {
  hash: 'ferry-sha256',
  'ferry-hash': 'ferry-sha256',
  discard: 'node-discard',
  fs: 'node-fs',
  'tus-server': 'tus',
};

function list<T extends string>(
  raw: string,
  allowed: readonly T[],
  name: string,
  map = (x: string) => x,
): T[] {
  const items = raw
    .split(',')
    .map((item) => map(item.trim()))
    .filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T))
      throw new Error(`${name}: unknown "${item}" (choose from ${allowed.join(', ')})`);
  }
  return allowed.filter((item) => items.includes(item));
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      only: { type: 'string' },
      servers: { type: 'string' },
      quick: { type: 'boolean', default: false },
      slice: { type: 'string', default: String(MiB) },
      'max-other-load': { type: 'string', default: '25' },
      'client-size': { type: 'string' },
      'client-runs': { type: 'string' },
      'web-size': { type: 'string' },
      'web-runs': { type: 'string' },
      's3-size': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const runs = Number(values.runs ?? (values.quick ? 1 : 3));
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs must be a whole number ≥ 1, got ${values.runs}`);
  const sliceSize = Number(values.slice);
  if (!Number.isInteger(sliceSize) || sliceSize < 65536 || sliceSize > MiB) {
    throw new Error(`--slice must be between 65536 and 1048576 bytes, got ${values.slice}`);
  }
  const maxOtherLoad = Number(values['max-other-load']);
  if (!(maxOtherLoad >= 0 && maxOtherLoad <= 100)) {
    throw new Error(`--max-other-load must be a percentage 0..100, got ${values['max-other-load']}`);
  }
  const defaults: Section[] = values.quick ? ['W1'] : [...defaultSections];
  const chosen = values.only === undefined ? defaults : list(values.only.toUpperCase(), sections, '--only');
  const clientSize =
    values['client-size'] === undefined ? (values.quick ? 256 * MiB : GiB) : parseSize(values['client-size']);
  if (!(clientSize >= MiB && clientSize <= 64 * GiB)) {
    throw new Error(`--client-size must be between 1 MiB and 64 GiB, got ${values['client-size']}`);
  }
  let clientRuns: Record<LinkId, number> = { loopback: 5, 'long-link': 1 };
  if (values['client-runs'] !== undefined) {
    const n = Number(values['client-runs']);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--client-runs must be a whole number ≥ 1, got ${values['client-runs']}`);
    clientRuns = { loopback: n, 'long-link': n };
  }
  const webSize =
    values['web-size'] === undefined ? (values.quick ? 256 * MiB : GiB) : parseSize(values['web-size']);
  if (!(webSize >= MiB && webSize <= 64 * GiB)) {
    throw new Error(`--web-size must be between 1 MiB and 64 GiB, got ${values['web-size']}`);
  }
  const webRuns = Number(values['web-runs'] ?? 1);
  if (!Number.isInteger(webRuns) || webRuns < 1)
    throw new Error(`--web-runs must be a whole number ≥ 1, got ${values['web-runs']}`);
  const s3Size =
    values['s3-size'] === undefined ? (values.quick ? 256 * MiB : GiB) : parseSize(values['s3-size']);
  if (!(s3Size >= 8 * MiB && s3Size <= 16 * GiB)) {
    throw new Error(`--s3-size must be between 8 MiB and 16 GiB, got ${values['s3-size']}`);
  }
  const only = chosen.length === 1 ? chosen[0] : undefined;
  const out =
    values.out ??
    (only === 'CLIENT'
      ? 'bench/results/client.md'
      : only === 'WEB'
        ? 'bench/results/web.md'
        : only === 'S3'
          ? 'bench/results/s3.md'
          : 'bench/results/latest.md');
  return {
    runs,
    sections: chosen,
    servers:
      values.servers === undefined
        ? [...serverIds]
        : list(values.servers.toLowerCase(), serverIds, '--servers', (x) => aliases[x] ?? x),
    quick: values.quick,
    w1Size: values.quick ? 256 * MiB : GiB,
    sliceSize,
    maxOtherLoad: maxOtherLoad / 100,
    clientSize,
    clientRuns,
    webSize,
    webRuns,
    s3Size,
    out: path.resolve(repoRoot, out),
  };
}

const units: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: MiB,
  gib: GiB,
  k: 1024,
  m: MiB,
  g: GiB,
};

/** `268435456`, `256MiB`, `1GiB`, `500MB` (powers of 1000), `1.5GiB`: a whole number of bytes. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match === null ? undefined : units[match[2]!.toLowerCase()];
  if (match === null || unit === undefined) {
    throw new Error(`not a size: "${text}" (use bytes or a unit: KiB, MiB, GiB, kB, MB, GB)`);
  }
  return Math.round(Number(match[1]) * unit);
}

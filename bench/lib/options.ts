// Command-line options of `npm run bench -- ...`.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, type ServerId, serverIds } from './servers.ts';
import { GiB, MiB, type WorkloadId } from './workloads.ts';

export type Section = WorkloadId | 'MEM';
const sections: readonly Section[] = ['W1', 'W2', 'W3', 'W4', 'MEM'];

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
  out: string;
}

export const usage = `Usage: npm run bench -- [options]

  --runs N           measured runs per server and workload (default 3, at least 1)
  --only LIST        sections to run, comma-separated: W1,W2,W3,W4,MEM (default: all)
  --servers LIST     servers, comma-separated: ferry, ferry-sha256, tus, node-discard, node-fs
                     (aliases: hash = ferry-sha256, discard = node-discard, fs = node-fs; default: all)
  --quick            smoke test: 1 run of W1 with a 256 MiB upload (unless --only/--runs say otherwise)
  --slice BYTES      largest body slice the client writes at once, 65536..1048576 (default 1048576)
  --max-other-load P  a run during which other processes used more than P % of the CPU is not
                     counted when clean runs exist, and is repeated while time allows (default 25; 100 = off)
  --out FILE         where the markdown report goes (default bench/results/latest.md)
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
      out: { type: 'string', default: 'bench/results/latest.md' },
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
  const defaultSections: Section[] = values.quick ? ['W1'] : [...sections];
  return {
    runs,
    sections:
      values.only === undefined ? defaultSections : list(values.only.toUpperCase(), sections, '--only'),
    servers:
      values.servers === undefined
        ? [...serverIds]
        : list(values.servers.toLowerCase(), serverIds, '--servers', (x) => aliases[x] ?? x),
    quick: values.quick,
    w1Size: values.quick ? 256 * MiB : GiB,
    sliceSize,
    maxOtherLoad: maxOtherLoad / 100,
    out: path.resolve(repoRoot, values.out),
  };
}

/**
 * Micro-benchmark of the fs store's append path: 1 GiB of in-memory 64 KiB chunks (the shape of an
 * HTTP request body) written through `createFsDataStore().append` with durability `none` and
 * `fsync`, each with direct I/O (O_DIRECT) and buffered, against `fs.createWriteStream` + `pipeline`. A consumer that discards the bytes shows the
 * ceiling of the source itself. Prints MB/s (10^6 bytes/s) and the CPU time of the whole process (all
 * threads: main, thread pool, kernel time on their behalf): median and best of 5 runs each. On a
 * shared VM the page cache itself is noisy (the same `dd` varies 5x run to run), and noise only ever
 * slows a run down, so the best run is the better estimate of what the code costs.
 *
 * Run: npx node bench/fs-append.ts [MiB] [name filter]
 * (default 1024 MiB, every variant). Temp files go to os.tmpdir() and are removed after each run.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createFsDataStore } from '@ferry/server';

const CHUNK = 64 * 1024;
const TOTAL = Number(process.argv[2] ?? 1024) * 1024 * 1024;
const ONLY = process.argv[3];
const RUNS = 5;

// Distinct buffers, cycled, so the data is not one page repeated.
const pool = Array.from({ length: 64 }, () => randomBytes(CHUNK));

/** A body that hands out `TOTAL` bytes in 64 KiB chunks as fast as it is read. */
function body(): Readable {
  let sent = 0;
  let index = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      while (sent < TOTAL) {
        const chunk = pool[index++ % pool.length]!;
        sent += chunk.length;
        if (!this.push(chunk)) return;
      }
      this.push(null);
    },
  });
}

interface Variant {
  name: string;
  run: (directory: string) => Promise<void>;
  rates: number[];
  /** CPU seconds (user + system, all threads) per run. */
  cpu: number[];
}

function variant(name: string, run: (directory: string) => Promise<void>): Variant {
  return { name, run, rates: [], cpu: [] };
}

/** One timed run in a fresh directory, removed afterwards. */
async function timeRun(target: Variant): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'ferry-bench-fs-'));
  try {
    const started = process.hrtime.bigint();
    const cpuBefore = process.cpuUsage();
    await target.run(directory);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpuBefore);
    target.rates.push(TOTAL / 1e6 / seconds);
    target.cpu.push((cpu.user + cpu.system) / 1e6);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  // Freeing a 1 GiB file leaves the file system work for its next journal commit: force that
  // commit now, untimed, so the next run does not pay for this one.
  const parent = await open(tmpdir(), 'r');
  await parent.sync();
  await parent.close();
}

function storeRun(durability: 'none' | 'fsync', directIo: 'on' | 'off') {
  let counter = 0;
  return async (directory: string) => {
    const store = createFsDataStore({ directory, durability, directIo });
    const id = `benchmark-upload-${String(counter++).padStart(6, '0')}`;
    const key = await store.create({ id, size: TOTAL });
    const result = await store.append(key, 0, body());
    if (result.bytesWritten !== TOTAL || result.interruption !== undefined) {
      throw new Error(`append wrote ${result.bytesWritten} of ${TOTAL} bytes`);
    }
  };
}

const discard = variant('discard (source ceiling)', async () => {
  const sink = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  await pipeline(body(), sink);
});

const writers: Variant[] = [
  variant('fs store, direct, durability none', storeRun('none', 'on')),
  variant('fs store, buffered, durability none', storeRun('none', 'off')),
  variant('fs store, direct, durability fsync', storeRun('fsync', 'on')),
  variant('fs store, buffered, durability fsync', storeRun('fsync', 'off')),
  variant('createWriteStream + pipeline', async (directory) => {
    await pipeline(body(), createWriteStream(join(directory, 'data')));
  }),
].filter((candidate) => ONLY === undefined || candidate.name.includes(ONLY));

console.log(`appending ${TOTAL / 1024 / 1024} MiB in ${CHUNK / 1024} KiB chunks, ${RUNS} runs each`);
if (ONLY === undefined) for (let i = 0; i < RUNS; i++) await timeRun(discard);
// Writing into memory the VM has not used for a while is much slower (its host faults the pages
// in): one untimed run first. Then round-robin, so a noisy moment on a shared machine does not land
// on one variant only.
if (writers.length > 0) await timeRun(variant('warm-up', writers[0]!.run));
for (let i = 0; i < RUNS; i++) {
  for (const writer of writers) await timeRun(writer);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
for (const { name, rates, cpu } of ONLY === undefined ? [discard, ...writers] : writers) {
  const all = rates.map((rate) => rate.toFixed(0)).join(', ');
  const best = Math.max(...rates).toFixed(0);
  const line = `median ${median(rates).toFixed(0).padStart(6)} MB/s, best ${best.padStart(6)} MB/s, ${median(cpu).toFixed(2)} CPU s`;
  console.log(`${name.padEnd(38)} ${line}   (runs: ${all} MB/s)`);
}

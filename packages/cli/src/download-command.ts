/**
 * `ferry download <url> -o FILE [--parallel N] [--chunk-size SIZE] [--limit-rate RATE] [--json]`:
 * a parallel, ranged, resumable download, verified against the server's digest before the file
 * gets its name. Ctrl-C keeps `FILE.part`; the same command again resumes it.
 */
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeError } from '@ferry/client';
import { downloadFile } from '@ferry/client/node';
import { authorization } from './bearer.ts';
import { createProgressWriter, outputModeOf } from './progress-line.ts';
import type { ServeIo } from './serve.ts';
import { parseQuantity, UnitError } from './units.ts';
import { UsageError } from './usage-error.ts';

export interface CommandIo extends ServeIo {
  readonly cwd: string;
  /** The environment (`FERRY_TOKEN`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal?: AbortSignal;
}

export function downloadHelp(): string {
  return [
    'Usage: ferry download <url> -o <file> [options]',
    '',
    'Downloads a finished file in parallel byte ranges. Interrupted (Ctrl-C, crash, lost network),',
    "the same command resumes from <file>.part. The file is checked against the server's SHA-256",
    '(Repr-Digest) before it is renamed to <file>; a mismatch keeps <file>.part and exits 1.',
    '',
    'Options:',
    '  -o, --output <file>        where to write the file (required)',
    '      --parallel <n>         ranged requests at once (default 4)',
    '      --chunk-size <size>    bytes per request, e.g. 8MiB (default 8MiB)',
    '      --limit-rate <size>    at most this many bytes per second, e.g. 10MB (default: no limit)',
    '      --json                 one JSON object per line instead of a progress bar',
    '      --token <token>        upload token, sent as Authorization: Bearer (default: FERRY_TOKEN)',
    '  -h, --help                 show this help',
    '',
    'Exit status: 0 done, 1 failed (the message says why), 2 bad command line.',
    '',
  ].join('\n');
}

function quantity(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseQuantity(value, 'bytes');
  } catch (error) {
    if (error instanceof UnitError)
      throw new UsageError(`${flag}: ${error.message}`, 'ferry download --help');
    throw error;
  }
}

export async function runDownload(argv: readonly string[], io: CommandIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message, 'ferry download --help');
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(downloadHelp());
    return 0;
  }
  if (positionals.length !== 1)
    throw new UsageError('give exactly one URL to download', 'ferry download --help');
  const url = positionals[0] as string;
  if (!/^https?:\/\//.test(url))
    throw new UsageError(`"${url}" is not an http(s) URL`, 'ferry download --help');
  if (values.output === undefined)
    throw new UsageError('--output <file> is required', 'ferry download --help');
  const parallel = values.parallel === undefined ? 4 : Number(values.parallel);
  if (!Number.isSafeInteger(parallel) || parallel < 1 || parallel > 64) {
    throw new UsageError('--parallel must be a whole number from 1 to 64', 'ferry download --help');
  }
  const chunkSize = quantity(values['chunk-size'], '--chunk-size');
  const limitRate = quantity(values['limit-rate'], '--limit-rate');
  const output = resolve(io.cwd, values.output);
  const mode = outputModeOf(io.stdout as { isTTY?: boolean }, values.json === true);
  const progress = createProgressWriter(io.stdout, mode);
  const label = basename(output);
  let lastJson = 0;
  try {
    const result = await downloadFile({
      url,
      output,
      parallel,
      ...(chunkSize === undefined ? {} : { chunkSize }),
      ...(limitRate === undefined ? {} : { limitRate }),
      ...(io.signal === undefined ? {} : { signal: io.signal }),
      ...authorization(values.token, io.env),
      progressIntervalMs: 200,
      onProgress: (event) => {
        progress.update([{ label, done: event.bytesDone, total: event.totalBytes, speed: event.speed }]);
        const now = Date.now();
        if (mode === 'json' && (now - lastJson >= 500 || event.bytesDone === event.totalBytes)) {
          lastJson = now;
          progress.json({
            type: 'progress',
            file: output,
            bytesDownloaded: event.bytesDone,
            totalBytes: event.totalBytes,
            speed: Math.round(event.speed),
          });
        }
      },
    });
    progress.end();
    if (mode === 'json') {
      progress.json({
        type: 'done',
        file: result.path,
        size: result.size,
        sha256: result.sha256,
        verifiedBy: result.verifiedBy,
        resumed: result.resumed,
      });
    } else {
      const check =
        result.verifiedBy === 'size'
          ? 'size checked (the server sent no digest)'
          : `SHA-256 verified (${result.sha256})`;
      io.stdout.write(`${result.path}: ${result.size} bytes, ${check}${result.resumed ? ', resumed' : ''}\n`);
    }
    return 0;
  } catch (error) {
    progress.end();
    if (io.signal?.aborted) {
      io.stderr.write(`ferry: download stopped; run the same command again to resume from ${output}.part\n`);
      return 130;
    }
    const message = describeError(error);
    if (mode === 'json') progress.json({ type: 'error', file: output, error: message });
    io.stderr.write(`ferry: download failed: ${message}\n`);
    return 1;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      output: { type: 'string', short: 'o' },
      parallel: { type: 'string' },
      'chunk-size': { type: 'string' },
      'limit-rate': { type: 'string' },
      json: { type: 'boolean' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

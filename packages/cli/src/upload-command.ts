/**
 * `ferry upload <files…> --endpoint URL [--protocol tus|parts] [--parallel N] [--chunk-size SIZE]
 * [--limit-rate RATE] [--json]`: uploads files one after another with per-file and total progress.
 * Resume state is kept by the client SDK's resume store, so running the same command again after
 * Ctrl-C or a crash continues each file where the server stopped.
 */
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createRateLimiter,
  createUpload,
  describeError,
  type Protocol,
  type UploadResult,
} from '@ferry/client';
import { authorization } from './bearer.ts';
import type { CommandIo } from './download-command.ts';
import { createProgressWriter, outputModeOf, type ProgressSample } from './progress-line.ts';
import { parseQuantity, UnitError } from './units.ts';
import { UsageError } from './usage-error.ts';

export function uploadHelp(): string {
  return [
    'Usage: ferry upload <files...> --endpoint <url> [options]',
    '',
    'Uploads files, one after another, and prints where each can be downloaded. Interrupted (Ctrl-C,',
    'crash, lost network), the same command continues each file where the server stopped.',
    '',
    'Options:',
    '      --endpoint <url>       tus creation URL (e.g. http://127.0.0.1:1080/files/) or, with',
    '                             --protocol parts, the parts API (e.g. http://127.0.0.1:1080/uploads)',
    '      --protocol <tus|parts> upload protocol (default tus: works with any tus 1.0 server)',
    '      --parallel <n>         parts in flight per file, parts only (default 4)',
    '      --chunk-size <size>    bytes per tus request, e.g. 16MiB (default: adaptive)',
    '      --limit-rate <size>    at most this many bytes per second in all, e.g. 10MB (default: no limit)',
    '      --json                 one JSON object per line instead of progress bars',
    '      --token <token>        upload token, sent as Authorization: Bearer (default: FERRY_TOKEN)',
    '  -h, --help                 show this help',
    '',
    'Exit status: 0 all uploaded, 1 a file failed (the message says why), 2 bad command line,',
    '130 stopped by Ctrl-C (run the same command again to resume).',
    '',
  ].join('\n');
}

export async function runUpload(argv: readonly string[], io: CommandIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError((error as Error).message, 'ferry upload --help');
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(uploadHelp());
    return 0;
  }
  const usage = (message: string) => new UsageError(message, 'ferry upload --help');
  if (positionals.length === 0) throw usage('name at least one file to upload');
  const endpoint = values.endpoint;
  if (endpoint === undefined) throw usage('--endpoint <url> is required');
  if (!/^https?:\/\//.test(endpoint)) throw usage(`--endpoint "${endpoint}" is not an http(s) URL`);
  const protocol = (values.protocol ?? 'tus') as Protocol;
  if (protocol !== 'tus' && protocol !== 'parts') throw usage('--protocol must be tus or parts');
  const parallel = values.parallel === undefined ? undefined : Number(values.parallel);
  if (parallel !== undefined && (!Number.isSafeInteger(parallel) || parallel < 1 || parallel > 64)) {
    throw usage('--parallel must be a whole number from 1 to 64');
  }
  const size = (value: string | undefined, flag: string) => {
    if (value === undefined) return undefined;
    try {
      const bytes = parseQuantity(value, 'bytes');
      if (bytes < 1) throw new UnitError(`"${value}" must be at least 1 byte`);
      return bytes;
    } catch (error) {
      if (error instanceof UnitError) throw usage(`${flag}: ${error.message}`);
      throw error;
    }
  };
  const chunkSize = size(values['chunk-size'], '--chunk-size');
  const limitRate = size(values['limit-rate'], '--limit-rate');

  // Every file must exist before anything is sent: a typo is a usage error, not a half-done batch.
  const files: { path: string; size: number }[] = [];
  for (const name of positionals) {
    const path = resolve(io.cwd, name);
    const info = await stat(path).catch(() => undefined);
    if (info === undefined || !info.isFile()) throw usage(`"${name}" is not a readable file`);
    files.push({ path, size: info.size });
  }

  const mode = outputModeOf(io.stdout as { isTTY?: boolean }, values.json === true);
  const progress = createProgressWriter(io.stdout, mode);
  const limiter = limitRate === undefined ? undefined : createRateLimiter(limitRate);
  const total = files.reduce((sum, file) => sum + file.size, 0);
  let finishedBytes = 0;
  const results: UploadResult[] = [];
  for (const file of files) {
    const label = basename(file.path);
    const upload = createUpload({
      endpoint,
      protocol,
      source: file.path,
      ...(parallel === undefined ? {} : { parallel }),
      ...(chunkSize === undefined ? {} : { chunkSize }),
      ...(limiter === undefined ? {} : { limitRate: limiter }),
      ...(io.signal === undefined ? {} : { signal: io.signal }),
      ...authorization(values.token, io.env),
      progressIntervalMs: 200,
    });
    let lastJson = 0;
    upload.on('progress', (event) => {
      const samples: ProgressSample[] = [
        { label, done: event.bytesConfirmed, total: file.size, speed: event.bytesPerSecond },
      ];
      if (files.length > 1) {
        samples.push({
          label: `total (${results.length + 1} of ${files.length} files)`,
          done: finishedBytes + event.bytesConfirmed,
          total,
          speed: event.bytesPerSecond,
        });
      }
      progress.update(samples);
      const now = Date.now();
      if (mode === 'json' && (now - lastJson >= 500 || event.bytesConfirmed === file.size)) {
        lastJson = now;
        progress.json({
          type: 'progress',
          file: file.path,
          bytesUploaded: event.bytesConfirmed,
          bytesInFlight: event.bytesInFlight,
          totalBytes: file.size,
          speed: Math.round(event.bytesPerSecond),
        });
      }
    });
    upload.on('retry', (event) => {
      if (mode === 'json')
        progress.json({ type: 'retry', file: file.path, ...event, error: String(event.error) });
    });
    try {
      const result = await upload.start();
      results.push(result);
      finishedBytes += file.size;
      progress.end();
      if (mode === 'json') {
        progress.json({
          type: 'done',
          file: file.path,
          url: result.url,
          size: result.size,
          sha256: result.sha256,
          deduplicated: result.deduplicated,
        });
      } else {
        io.stdout.write(
          `${label}: uploaded ${result.size} bytes${result.deduplicated ? ' (deduplicated)' : ''} → ${result.url}\n`,
        );
      }
    } catch (error) {
      progress.end();
      if (io.signal?.aborted) {
        io.stderr.write('ferry: upload stopped; run the same command again to continue where it stopped\n');
        return 130;
      }
      const message = describeError(error);
      if (mode === 'json') progress.json({ type: 'error', file: file.path, error: message });
      io.stderr.write(`ferry: ${label}: upload failed: ${message}\n`);
      return 1;
    }
  }
  return 0;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      endpoint: { type: 'string' },
      protocol: { type: 'string' },
      parallel: { type: 'string' },
      'chunk-size': { type: 'string' },
      'limit-rate': { type: 'string' },
      json: { type: 'boolean' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

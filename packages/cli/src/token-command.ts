/**
 * `ferry token --sub <owner> [--ttl <duration>] [--max-size <size>] [--types <a,b>] [--upload-id <id>]`:
 * mints an upload token signed with the server's secret and prints only the token, so a script can
 * write `TOKEN=$(ferry token --sub alice)`. The secret is found as `ferry serve` finds it: the
 * `--auth-secret` flag, then `FERRY_AUTH_SECRET`, then the config file's `authSecret`.
 */
import { parseArgs } from 'node:util';
import { ConfigError, mintUploadToken } from '@ferry/server';
import { loadConfigFile } from './config-file.ts';
import { DEFAULT_CONFIG_FILE } from './options.ts';
import type { Environment } from './serve-settings.ts';
import { parseQuantity, UnitError } from './units.ts';
import { UsageError } from './usage-error.ts';

const HELP_COMMAND = 'ferry token --help';
/** One hour: long enough for a large upload to start, short enough that a leaked token soon dies. */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
/** A week: upload tokens are meant to be short-lived. */
export const MAX_TOKEN_TTL_SECONDS = 7 * 86_400;

export interface TokenIo {
  readonly stdout: { write(text: string): unknown };
  readonly env: Environment;
  readonly cwd: string;
}

export function tokenHelp(): string {
  return [
    'Usage: ferry token --sub <owner> [options]',
    '',
    'Mints an upload token for a server started with an auth secret and prints only the token. The',
    "app's backend runs this (or calls mintUploadToken from @ferry/server) and hands the token to",
    'its browser client, which sends it as Authorization: Bearer <token>.',
    '',
    'Options:',
    '      --sub <owner>           the namespace that owns the uploads made with the token (required)',
    `      --ttl <duration>        seconds until the token expires, or 15m, 2h… (default ${DEFAULT_TOKEN_TTL_SECONDS}, at most ${MAX_TOKEN_TTL_SECONDS})`,
    '      --max-size <size>       largest upload the token may create, e.g. 100MB (default: the server limit)',
    '      --types <a,b,...>       MIME types or patterns the file must declare, e.g. image/*,application/pdf',
    '      --upload-id <id>        the token reaches only this upload (resume it, read it, delete it)',
    '      --auth-secret <secret>  the server\'s secret (default: FERRY_AUTH_SECRET, then "authSecret"',
    `                              in --config, FERRY_CONFIG or ./${DEFAULT_CONFIG_FILE})`,
    '      --config <path>         a JSON config file of ferry serve to read authSecret from',
    '  -h, --help                  show this help',
    '',
    'Prefer FERRY_AUTH_SECRET to --auth-secret: a flag is visible to other users in the process list.',
    '',
    'Exit status: 0 printed, 2 bad command line or no secret.',
    '',
  ].join('\n');
}

export async function runToken(argv: readonly string[], io: TokenIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError((error as Error).message, HELP_COMMAND);
  }
  const { values } = parsed;
  if (values.help) {
    io.stdout.write(tokenHelp());
    return 0;
  }
  const usage = (message: string) => new UsageError(message, HELP_COMMAND);
  const subject = values.sub;
  if (subject === undefined || subject === '') throw usage('--sub <owner> is required');
  const ttlSeconds = quantity(values.ttl, 'seconds', '--ttl') ?? DEFAULT_TOKEN_TTL_SECONDS;
  if (ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw usage(`--ttl must be from 1 second to ${MAX_TOKEN_TTL_SECONDS} seconds (7d)`);
  }
  const maxSize = quantity(values['max-size'], 'bytes', '--max-size');
  const types = values.types
    ?.flatMap((text) => text.split(','))
    .map((type) => type.trim())
    .filter((type) => type !== '');
  const secret = findSecret(values['auth-secret'], values.config, io);
  try {
    const token = await mintUploadToken({
      secret,
      subject,
      ttlSeconds,
      ...(maxSize === undefined ? {} : { maxSize }),
      ...(types === undefined ? {} : { types }),
      ...(values['upload-id'] === undefined ? {} : { uploadId: values['upload-id'] }),
    });
    io.stdout.write(`${token}\n`);
    return 0;
  } catch (error) {
    // The claims were checked by the minting function; say which flag to fix.
    if (error instanceof TypeError) throw usage(error.message);
    throw error;
  }
}

function findSecret(flag: string | undefined, config: string | undefined, io: TokenIo): string {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = io.env['FERRY_AUTH_SECRET'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const configPath = config ?? (io.env['FERRY_CONFIG'] || undefined);
  const file = loadConfigFile(
    configPath === undefined
      ? undefined
      : { path: configPath, origin: config === undefined ? 'FERRY_CONFIG' : '--config' },
    io.cwd,
  );
  const fromFile = file?.values.get('authSecret')?.value;
  if (typeof fromFile === 'string' && fromFile !== '') return fromFile;
  throw new ConfigError(
    'no auth secret: set FERRY_AUTH_SECRET (or --auth-secret, or "authSecret" in the config file) to the secret ferry serve uses',
  );
}

function quantity(text: string | undefined, unit: 'bytes' | 'seconds', flag: string): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseQuantity(text, unit);
  } catch (error) {
    if (error instanceof UnitError) throw new UsageError(`${flag}: ${error.message}`, HELP_COMMAND);
    throw error;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: false,
    strict: true,
    options: {
      sub: { type: 'string' },
      ttl: { type: 'string' },
      'max-size': { type: 'string' },
      types: { type: 'string', multiple: true },
      'upload-id': { type: 'string' },
      'auth-secret': { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

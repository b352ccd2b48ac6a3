/**
 * The S3 server tests run against. Settings come from `S3_ENDPOINT`, `S3_BUCKET`, `S3_REGION`,
 * `S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY` and `S3_FORCE_PATH_STYLE` when `S3_ENDPOINT` is set
 * (scripts/run-tests.mjs sets them after starting the project's gateway once); otherwise the
 * project's own Ceph RGW is started with scripts/s3/start (idempotent: an instance already up is
 * reused and left running; `FERRY_S3_UNAVAILABLE` says it already failed). Without either, tests that need S3 are skipped with a loud notice —
 * unless `FERRY_REQUIRE_SERVICES=1` (CI), where that is a failure.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export interface S3Settings {
  endpoint: string;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
}

export const S3_START_SCRIPT = fileURLToPath(new URL('../../../scripts/s3/start', import.meta.url));

let pending: Promise<S3Settings | string> | undefined;

/** Reads `export NAME=value` lines (what scripts/s3/start prints). */
export function parseExports(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) values[match[1]!] = match[2]!.replace(/^'(.*)'$/, '$1');
  }
  return values;
}

function fromEnvironment(env: Record<string, string | undefined>): S3Settings | undefined {
  const endpoint = env['S3_ENDPOINT'];
  if (!endpoint) return undefined;
  return {
    endpoint,
    bucket: env['S3_BUCKET'] || 'ferry-test',
    region: env['S3_REGION'] || 'us-east-1',
    forcePathStyle: (env['S3_FORCE_PATH_STYLE'] ?? 'true') !== 'false',
    accessKeyId: env['S3_ACCESS_KEY_ID'] ?? '',
    secretAccessKey: env['S3_SECRET_ACCESS_KEY'] ?? '',
  };
}

function startProjectGateway(): Promise<S3Settings | string> {
  return new Promise((resolve) => {
    execFile('bash', [S3_START_SCRIPT], { timeout: 240_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      const settings = fromEnvironment(parseExports(stdout));
      if (error || settings === undefined) {
        resolve(
          `scripts/s3/start failed: ${error?.message ?? 'no S3_ENDPOINT printed'}\n${stderr.slice(-2000)}`,
        );
        return;
      }
      resolve(settings);
    });
  });
}

/**
 * The S3 settings, or undefined when no S3 server can be had (a notice says why). Throws instead
 * when `FERRY_REQUIRE_SERVICES=1`.
 */
export async function s3Service(): Promise<S3Settings | undefined> {
  const given = fromEnvironment(process.env);
  if (given) return given;
  const known = process.env['FERRY_S3_UNAVAILABLE'];
  pending ??= known ? Promise.resolve(known) : startProjectGateway();
  const outcome = await pending;
  if (typeof outcome !== 'string') return outcome;
  if (process.env['FERRY_REQUIRE_SERVICES'] === '1') {
    throw new Error(`S3 is required (FERRY_REQUIRE_SERVICES=1) but not available: ${outcome}`);
  }
  process.stderr.write(
    `\n!!! S3 tests SKIPPED: no S3_ENDPOINT and the project's gateway could not be started.\n!!! ${outcome}\n\n`,
  );
  return undefined;
}

/** A key prefix of its own for one test file or test, so parallel tests never share objects. */
export function uniqueKeyPrefix(label = 'test'): string {
  return `${label}-${process.pid}-${randomBytes(4).toString('hex')}/`;
}

/** The settings as options of `createS3DataStore` (explicit credentials: tests never use the default chain). */
export function s3StoreOptions(settings: S3Settings, keyPrefix: string) {
  return {
    bucket: settings.bucket,
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    keyPrefix,
  };
}

/** The settings as the environment a `ferry serve --storage s3` child process reads. */
export function s3ProcessEnv(settings: S3Settings): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: settings.accessKeyId,
    AWS_SECRET_ACCESS_KEY: settings.secretAccessKey,
    AWS_REGION: settings.region,
  };
}

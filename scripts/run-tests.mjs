// Runs every test file of the repository with Node's test runner and ends with one plain summary
// line ("N passed, N failed, N skipped") that a CI can read.
//
// Tests that need S3 get it from S3_ENDPOINT & co. When S3_ENDPOINT is unset, the project's own Ceph
// RGW (scripts/s3/start) is started once here and its settings passed to every test file; it is
// stopped at the end only if this run started it. If it cannot start, FERRY_S3_UNAVAILABLE tells
// the tests why (they skip with a notice, or fail under FERRY_REQUIRE_SERVICES=1).
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await (await import('node:fs/promises')).mkdir(`${root}test-results`, { recursive: true });
const patterns = process.argv.slice(2);
const files = patterns.length > 0 ? patterns : ['packages/*/test/**/*.test.ts', 'e2e/**/*.test.ts'];
const args = [
  // Tests import the TypeScript sources of every package (not dist/): one copy of each module.
  '--conditions=ferry-source',
  '--test',
  '--test-concurrency=4',
  '--test-timeout=300000',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/summary-reporter.mjs',
  '--test-reporter-destination=./test-results/summary.json',
  ...files,
];
const gateway = await startS3();
const child = spawn(process.execPath, args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, ...gateway.env },
});
child.on('exit', async (code, signal) => {
  if (gateway.started) await stopS3();
  const { readFile } = await import('node:fs/promises');
  let summary = { passed: 0, failed: 0, skipped: 0 };
  try {
    summary = JSON.parse(await readFile(`${root}test-results/summary.json`, 'utf8'));
  } catch {
    summary.failed = Math.max(1, summary.failed);
  }
  process.stdout.write(`\n${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped\n`);
  process.exit(code ?? (signal ? 1 : 0));
});

/** Starts the project's S3 gateway unless S3_ENDPOINT is set; says whether this run started it. */
async function startS3() {
  if (process.env.S3_ENDPOINT) return { env: {}, started: false };
  const outcome = await new Promise((resolve) => {
    execFile('bash', [`${root}scripts/s3/start`], { timeout: 300_000 }, (error, stdout, stderr) =>
      resolve({ error, stdout, stderr }),
    );
  });
  const env = {};
  for (const line of outcome.stdout.split('\n')) {
    const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1]] = match[2];
  }
  if (outcome.error || !env.S3_ENDPOINT) {
    const reason = `scripts/s3/start failed: ${outcome.error?.message ?? 'no S3_ENDPOINT'} ${outcome.stderr.slice(-1000)}`;
    process.stderr.write(`${reason}\n`);
    return { env: { FERRY_S3_UNAVAILABLE: reason }, started: false };
  }
  return { env, started: !/already running/.test(outcome.stderr) };
}

function stopS3() {
  return new Promise((resolve) => execFile('bash', [`${root}scripts/s3/stop`], () => resolve()));
}

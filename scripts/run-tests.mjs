// Runs every test file of the repository with Node's test runner and ends with one plain summary
// line ("N passed, N failed, N skipped") that a CI can read.
import { spawn } from 'node:child_process';
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
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
child.on('exit', async (code, signal) => {
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

// Installs the workspace on first use, so `npm start` and `npm test` work on a fresh clone.
// Runs on whatever Node starts it (the machine's own Node may be older than the pinned one):
// plain JavaScript, no dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const marker = `${root}node_modules/.package-lock.json`;
const lock = `${root}package-lock.json`;
const pinnedNode = `${root}node_modules/node/bin/node`;

const fresh =
  existsSync(marker) && existsSync(pinnedNode) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs;
if (!fresh) {
  process.stderr.write('ferry: installing dependencies (npm ci) — first run only\n');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write('ferry: npm ci failed; see the output above\n');
    process.exit(result.status ?? 1);
  }
}

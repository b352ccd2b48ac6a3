// Builds the web app before `npm start` when its build is missing or older than its sources, so
// `ferry serve` shows the current app at /. Does nothing, quietly, until apps/web is an app (a
// `build` script and an index.html). A failed build does not stop the server: it then serves the
// previous build, or a page saying how to build.
// Runs on whatever Node starts it (the machine's own Node may be older than the pinned one):
// plain JavaScript, no dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const app = join(root, 'apps', 'web');

function hasBuildScript() {
  try {
    const manifest = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
    return typeof manifest.scripts?.build === 'string';
  } catch {
    return false;
  }
}

/** The newest modification time under `path`, skipping build output and installed packages. */
function newest(path) {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    return 0;
  }
  if (!stats.isDirectory()) return stats.mtimeMs;
  let latest = stats.mtimeMs;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'dist' || entry.startsWith('.')) continue;
    latest = Math.max(latest, newest(join(path, entry)));
  }
  return latest;
}

if (hasBuildScript() && existsSync(join(app, 'index.html'))) {
  const built = join(app, 'dist', 'index.html');
  // The app bundles the workspace packages it imports; a change in any of them changes the build.
  const sources = [
    app,
    ...['react', 'client', 'protocol'].map((name) => join(root, 'packages', name, 'src')),
  ];
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
  const changedAt = Math.max(...sources.map(newest));
  if (builtAt === 0 || changedAt > builtAt) {
    process.stderr.write(
      `ferry: building the web app (npm run build -w apps/web) — ${builtAt === 0 ? 'not built yet' : 'its sources changed'}\n`,
    );
    const result = spawnSync('npm', ['run', 'build', '-w', 'apps/web'], { cwd: root, stdio: 'inherit' });
    if (result.status !== 0) {
      process.stderr.write('ferry: the web app did not build (see above); starting the server without it\n');
    }
  }
}

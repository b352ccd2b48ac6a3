#!/usr/bin/env node
// Entry point of the `ferry` command. The sources are TypeScript run by Node's type stripping
// (Node >= 22.18). On an older Node, re-run this file on the runtime pinned by the repository.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  await import('../src/main.ts');
} else {
  const pinned = fileURLToPath(new URL('../../../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(
      `ferry needs Node.js >= 22.18 (this is ${process.version}); run \`npm ci\` in the repository.\n`,
    );
    process.exit(1);
  }
  const child = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(child.status ?? 1);
}

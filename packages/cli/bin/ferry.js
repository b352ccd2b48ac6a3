#!/usr/bin/env node
// Entry point of the `ferry` command. Runs the compiled JavaScript (`tsc -b` writes dist/; npm
// runs it after every install) on Node >= 22.13, where node:sqlite needs no flag; without a build,
// the TypeScript sources through Node's type stripping (>= 22.18). On an older Node, re-run this
// file on the runtime pinned by the repository.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
// Node 22 still calls node:sqlite experimental and says so on stderr, which `ferry serve` keeps for
// JSON log lines. That one warning is dropped; every other warning is printed as Node would.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /SQLite/.test(warning.message)) return;
  process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
});
const compiled = new URL('../dist/src/main.js', import.meta.url);
if ((major > 22 || (major === 22 && minor >= 13)) && existsSync(compiled)) {
  await import(compiled.href);
} else if (major > 22 || (major === 22 && minor >= 18)) {
  await import('../src/main.ts');
} else {
  const pinned = fileURLToPath(new URL('../../../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(
      `ferry needs Node.js >= 22.18 (this is ${process.version}); run \`npm ci\` in the repository.\n`,
    );
    process.exit(1);
  }
  // The child runs in its own process group and this process forwards each signal exactly once:
  // `ferry serve` shuts down gracefully on the first SIGTERM/SIGINT and exits at once on a second,
  // so a Ctrl-C that reached both processes through the terminal would count twice, and a signal
  // sent to this process alone (a service manager, `kill PID`) must not leave the server orphaned.
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    detached: true,
  });
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const signal of signals) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`ferry: cannot start ${pinned}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (code !== null) process.exit(code);
    // Died of a signal: die of the same one, so the caller sees what happened.
    for (const name of signals) process.removeAllListeners(name);
    process.kill(process.pid, signal ?? 'SIGTERM');
  });
}

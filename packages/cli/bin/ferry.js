#!/usr/bin/env node
// Entry point of the `ferry` command. Runs the compiled JavaScript (`tsc -b` writes dist/; npm
// runs it after every install) on Node >= 22.13, where node:sqlite needs no flag; without a build,
// the TypeScript sources through Node's type stripping (>= 22.18). On an older Node, re-run this
// file on the runtime pinned by the repository.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const [major, minor] = process.versions.node.split('.').map(Number);
// V8 starts a full garbage collection whenever the memory outside its heap (Buffers: every chunk of
// every request body) grows past a limit computed from its own small heap, which an upload server
// passes every few dozen MiB received. Counting that memory within the global limit instead cut the
// full collections of a 1 GiB parts upload from ~50 to ~15 and its server CPU by ~1 s (about 15 %
// faster on two cores), for ~60 MiB more peak memory (docs/operations.md). V8 13 (Node 24) has the
// flag; older ones would print an error for it.
if (Number(process.versions.v8.split('.')[0]) >= 13) {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
}
// A collection call for the few loops that drop many bytes at once (reading an S3 object back to
// verify its SHA-256): they ask V8 to collect every few MiB they dropped, which kept the server's
// peak memory ~130 MiB lower and the same whatever the object's size. `--expose-gc`
// set now reaches only contexts made later, so the function comes from one made for it, and the
// application's own global scope gets no `gc`.
setFlagsFromString('--expose-gc');
globalThis[Symbol.for('ferry.collectGarbage')] = runInNewContext('gc');
setFlagsFromString('--no-expose-gc');
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

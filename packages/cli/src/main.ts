/** Process entry of the `ferry` command (started by bin/ferry.js). */
import { run } from './cli.ts';

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  exit: (status) => process.exit(status),
});
process.exitCode = code;
// Leave as soon as the event loop is empty, so pending log lines are written; but do not let a
// stray handle (a forgotten timer or socket) keep a stopped server's process alive.
setTimeout(() => process.exit(code), 2000).unref();

/** Runs the `ferry` command line in-process and collects what it printed. */
import assert from 'node:assert/strict';
import { run } from '../src/cli.ts';

export interface CliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** `cwd` is where relative paths on the command line are read from. */
export async function runCli(cwd: string, ...argv: string[]): Promise<CliOutput> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: {},
    cwd,
    exit: (status) => assert.fail(`exit(${status}) called`),
  });
  return { code, stdout, stderr };
}

/** The `ferry` command line: picks the command, reports errors and returns the exit status. */
import { ConfigError } from '@ferry/server';
import { downloadHelp, runDownload } from './download-command.ts';
import { COMMANDS, mainHelp, serveHelp, version } from './help.ts';
import { runServe, type ServeIo } from './serve.ts';
import { parseServeArgs } from './serve-args.ts';
import { type Environment, resolveServeSettings } from './serve-settings.ts';
import { closest } from './suggest.ts';
import { runToken, tokenHelp } from './token-command.ts';
import { runUpload, uploadHelp } from './upload-command.ts';
import { UsageError } from './usage-error.ts';

export interface CliIo extends ServeIo {
  readonly env: Environment;
  readonly cwd: string;
}

const COMMAND_HELP: Record<string, () => string> = {
  serve: serveHelp,
  upload: uploadHelp,
  download: downloadHelp,
  token: tokenHelp,
};

/**
 * Runs one command line (without `node` and the script) and resolves with the exit status:
 * 0 done, 1 failed while running, 2 bad command line or configuration.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [command, ...rest] = argv;
    switch (command) {
      case undefined:
        io.stderr.write(mainHelp());
        return 2;
      case '-h':
      case '--help':
      case 'help': {
        const topic = rest[0] === undefined ? undefined : COMMAND_HELP[rest[0]];
        if (rest[0] !== undefined && !topic) throw unknownCommand(rest[0]);
        io.stdout.write((topic ?? mainHelp)());
        return 0;
      }
      case '-v':
      case '--version':
        io.stdout.write(`${version()}\n`);
        return 0;
      case 'serve': {
        const args = parseServeArgs(rest);
        if (args.help) {
          io.stdout.write(serveHelp());
          return 0;
        }
        return await runServe(resolveServeSettings(args, io.env, io.cwd), io);
      }
      case 'upload':
        return await withStopSignal((signal) => runUpload(rest, { ...io, signal }));
      case 'download':
        return await withStopSignal((signal) => runDownload(rest, { ...io, signal }));
      case 'token':
        return await runToken(rest, io);
      default:
        throw unknownCommand(command);
    }
  } catch (error) {
    return report(error, io);
  }
}

/**
 * Runs a client command with a signal that aborts on the first SIGINT/SIGTERM, so the command can
 * keep what it did (a resumable state) and exit; a second signal exits at once.
 */
async function withStopSignal(command: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new Error('stopped by a signal'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await command(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function unknownCommand(name: string): UsageError {
  const guess = closest(
    name,
    COMMANDS.map((command) => command.name),
  );
  return new UsageError(
    `unknown command "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
    'ferry --help',
  );
}

function report(error: unknown, io: CliIo): number {
  if (error instanceof UsageError) {
    io.stderr.write(`ferry: ${error.message}\nRun "${error.helpCommand}" to see what is accepted.\n`);
    return 2;
  }
  if (error instanceof ConfigError) {
    io.stderr.write(`ferry: ${error.message}\n`);
    return 2;
  }
  // Anything else is a failure while running (the data directory cannot be created, …): say what
  // happened without a stack trace, which is noise to an operator reading a service log.
  io.stderr.write(`ferry: ${error instanceof Error ? error.message : String(error)}\n`);
  return 1;
}

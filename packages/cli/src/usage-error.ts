/**
 * A command line that cannot be run as written (unknown command or flag, missing value). The
 * command exits with status 2 and points at `--help`, as shells and most CLIs do for misuse.
 */
export class UsageError extends Error {
  /** The help command that lists what is accepted, e.g. `ferry serve --help`. */
  readonly helpCommand: string;

  constructor(message: string, helpCommand: string) {
    super(message);
    this.name = 'UsageError';
    this.helpCommand = helpCommand;
  }
}

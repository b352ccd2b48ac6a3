/** The command line of `ferry serve`, read with `node:util` parseArgs in strict mode. */
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { parseOptionText, SERVE_OPTIONS } from './options.ts';
import { closest } from './suggest.ts';
import { UsageError } from './usage-error.ts';

const HELP_COMMAND = 'ferry serve --help';

/** A value given on the command line, with the flag that gave it (for error messages). */
export interface GivenValue {
  readonly value: unknown;
  readonly origin: string;
}

export interface ServeArgs {
  readonly help: boolean;
  /** Option key → value, only for the options present on the command line. */
  readonly values: ReadonlyMap<string, GivenValue>;
}

function parserOptions(): ParseArgsOptionsConfig {
  const options: ParseArgsOptionsConfig = { help: { type: 'boolean', short: 'h' } };
  for (const entry of SERVE_OPTIONS) {
    const name = entry.flag.slice(2);
    if (entry.type === 'boolean') options[name] = { type: 'boolean' };
    // A list may be given whole (`--cors-origins a,b`) or one flag per item; both are joined.
    else if (entry.type === 'list') options[name] = { type: 'string', multiple: true };
    else options[name] = { type: 'string' };
  }
  return options;
}

/**
 * Reads the flags. Throws `UsageError` for what parseArgs refuses (unknown flag, missing value,
 * stray argument) and `ConfigError` for a value of the wrong form (`--max-size lots`).
 */
export function parseServeArgs(argv: readonly string[]): ServeArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: parserOptions(),
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    });
  } catch (error) {
    throw explain(error);
  }
  const values = new Map<string, GivenValue>();
  // Help wins over everything else on the line, so a half-typed command can still ask for it.
  if (parsed.values['help'] === true) return { help: true, values };
  for (const entry of SERVE_OPTIONS) {
    const raw = parsed.values[entry.flag.slice(2)];
    if (raw === undefined) continue;
    let value: unknown;
    if (typeof raw === 'boolean') value = raw;
    else if (Array.isArray(raw))
      value = raw.flatMap((text) => parseOptionText(entry, String(text), entry.flag) as string[]);
    else value = parseOptionText(entry, raw, entry.flag);
    values.set(entry.key, { value, origin: entry.flag });
  }
  return { help: false, values };
}

/** Turns parseArgs' errors into messages that say what to type instead. */
function explain(error: unknown): unknown {
  if (!(error instanceof Error) || !('code' in error)) return error;
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? '';
  const flag = quoted.split(' ')[0] ?? quoted;
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const known = ['--help', ...SERVE_OPTIONS.map((entry) => entry.flag)];
      for (const entry of SERVE_OPTIONS)
        if (entry.type === 'boolean') known.push(`--no-${entry.flag.slice(2)}`);
      const guess = closest(flag, known);
      return new UsageError(
        `unknown option ${flag}${guess ? ` (did you mean ${guess}?)` : ''}`,
        HELP_COMMAND,
      );
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (error.message.includes('argument missing'))
        return new UsageError(`${flag} needs a value`, HELP_COMMAND);
      if (error.message.includes('does not take an argument')) {
        const name = flag.replace(/^--(no-)?/, '');
        return new UsageError(`${flag} takes no value: write --${name} or --no-${name}`, HELP_COMMAND);
      }
      // parseArgs refuses `--port -1` as ambiguous: the value looks like the next flag.
      if (error.message.includes('ambiguous'))
        return new UsageError(
          `${flag} needs a value; one that starts with "-" is written ${flag}=-…`,
          HELP_COMMAND,
        );
      return new UsageError(error.message, HELP_COMMAND);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`unexpected argument "${quoted}": ferry serve takes only options`, HELP_COMMAND);
    default:
      return error;
  }
}

export { type CliIo, run } from './cli.ts';
export { flagSyntax, formatDefault, mainHelp, serveHelp, unitLabel, version } from './help.ts';
export {
  DEFAULT_CONFIG_FILE,
  DEFAULT_HOST,
  DEFAULT_PORT,
  envName,
  kebabCase,
  OPTIONS_BY_KEY,
  type OptionType,
  parseOptionJson,
  parseOptionText,
  SERVE_OPTIONS,
  type ServeOption,
  unitOf,
} from './options.ts';
export { httpUrl, runServe, type ServeIo } from './serve.ts';
export { type GivenValue, parseServeArgs, type ServeArgs } from './serve-args.ts';
export {
  type Environment,
  readEnvironment,
  resolveServeSettings,
  type ServeSettings,
} from './serve-settings.ts';
export { formatDuration, formatSize, type OptionUnit, parseQuantity, UnitError } from './units.ts';
export { UsageError } from './usage-error.ts';

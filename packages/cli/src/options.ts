/**
 * The options of `ferry serve`, generated from the server's `CONFIG_FIELDS` plus the options only
 * the command has (host, port, config file, the web app's directory and switch). Flags, environment variables, help text and
 * docs/configuration.md are all derived from this one table, so none of them can drift from the
 * server's configuration.
 */
import { CONFIG_FIELDS, ConfigError, DEFAULT_CONFIG } from '@ferry/server';
import { type OptionUnit, parseQuantity, UnitError } from './units.ts';
import { DEFAULT_WEB_DIR, DEFAULT_WEB_DIR_LABEL } from './web-dir.ts';

export type OptionType = 'string' | 'integer' | 'boolean' | 'list' | 'enum';

export interface ServeOption {
  /** The `ServerConfig` key, or `host` / `port` / `config`; also the config-file key. */
  readonly key: string;
  /** `--data-dir` */
  readonly flag: string;
  /** `FERRY_DATA_DIR` */
  readonly env: string;
  readonly type: OptionType;
  readonly values?: readonly string[];
  readonly unit: OptionUnit;
  readonly description: string;
  /** The default value; undefined when the option has none (the config file path). */
  readonly defaultValue: unknown;
  /** How help and docs show the default, when the value itself depends on the machine. */
  readonly defaultLabel?: string;
  /** True for `ServerConfig` fields; false for the options only `ferry serve` reads. */
  readonly server: boolean;
  /** Whether the key may appear in a config file (the file cannot name another file). */
  readonly inConfigFile: boolean;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 1080;
export const DEFAULT_CONFIG_FILE = 'ferry.config.json';

/** `dataDir` → `data-dir` */
export function kebabCase(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** `dataDir` → `FERRY_DATA_DIR` */
export function envName(key: string): string {
  return `FERRY_${kebabCase(key).replaceAll('-', '_').toUpperCase()}`;
}

/**
 * The base unit of an integer field, read from its name: the server spells the unit into every
 * key (`…Ms`, `…Seconds`, `…Bytes`), except `maxSize`, which is in bytes like `Tus-Max-Size`, and
 * `s3PartSize`, in bytes like S3's part sizes.
 */
export function unitOf(key: string, type: OptionType): OptionUnit {
  if (type !== 'integer') return 'count';
  if (key.endsWith('Bytes') || key === 'maxSize' || key === 's3PartSize') return 'bytes';
  if (key.endsWith('Ms')) return 'milliseconds';
  if (key.endsWith('Seconds')) return 'seconds';
  return 'count';
}

function option(
  key: string,
  type: OptionType,
  description: string,
  defaultValue: unknown,
  extra: { values?: readonly string[]; server: boolean; inConfigFile: boolean; defaultLabel?: string },
): ServeOption {
  return {
    key,
    flag: `--${kebabCase(key)}`,
    env: envName(key),
    type,
    ...(extra.values ? { values: extra.values } : {}),
    unit: unitOf(key, type),
    description,
    defaultValue,
    ...(extra.defaultLabel ? { defaultLabel: extra.defaultLabel } : {}),
    server: extra.server,
    inConfigFile: extra.inConfigFile,
  };
}

export const SERVE_OPTIONS: readonly ServeOption[] = Object.freeze([
  option('host', 'string', 'address to listen on (0.0.0.0 or :: for every interface)', DEFAULT_HOST, {
    server: false,
    inConfigFile: true,
  }),
  option('port', 'integer', 'TCP port to listen on (0 = any free port)', DEFAULT_PORT, {
    server: false,
    inConfigFile: true,
  }),
  option(
    'config',
    'string',
    `path of a JSON config file (without it, ./${DEFAULT_CONFIG_FILE} is read when it exists)`,
    undefined,
    { server: false, inConfigFile: false },
  ),
  ...CONFIG_FIELDS.map((field) =>
    option(field.key, field.type, field.description, DEFAULT_CONFIG[field.key], {
      ...(field.values ? { values: field.values } : {}),
      ...(field.defaultLabel ? { defaultLabel: field.defaultLabel } : {}),
      server: true,
      inConfigFile: true,
    }),
  ),
  option('webDir', 'string', 'directory of the built web app, served at /', DEFAULT_WEB_DIR, {
    server: false,
    inConfigFile: true,
    defaultLabel: DEFAULT_WEB_DIR_LABEL,
  }),
  option('web', 'boolean', 'serve the web app at / (--no-web: only the API)', true, {
    server: false,
    inConfigFile: true,
  }),
]);

export const OPTIONS_BY_KEY: ReadonlyMap<string, ServeOption> = new Map(
  SERVE_OPTIONS.map((entry) => [entry.key, entry]),
);

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off']);

/**
 * Reads an option's value from text (a flag's argument or an environment variable). `origin`
 * names where the text came from (`--max-size`, `FERRY_MAX_SIZE`, …) so the error says what to fix.
 */
export function parseOptionText(entry: ServeOption, text: string, origin: string): unknown {
  const fail = (why: string): never => {
    throw new ConfigError(`${origin}: ${why}`);
  };
  switch (entry.type) {
    case 'string':
      if (text === '') fail('must not be empty');
      return text;
    case 'boolean': {
      const word = text.trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return true;
      if (FALSE_WORDS.has(word)) return false;
      return fail(`"${text}" is not a boolean (use 1/0, true/false, yes/no or on/off)`);
    }
    case 'integer':
      try {
        return parseQuantity(text, entry.unit);
      } catch (error) {
        if (error instanceof UnitError) fail(error.message);
        throw error;
      }
    case 'list':
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    case 'enum':
      if (!entry.values?.includes(text)) fail(`"${text}" is not one of ${entry.values?.join(', ')}`);
      return text;
  }
}

/**
 * Reads an option's value from a parsed JSON config file. Native JSON types are taken as they are
 * (numbers in the base unit, booleans, arrays of strings); strings are read like the environment,
 * so `"maxSize": "5GiB"` and `"corsOrigins": "https://a.example,https://b.example"` work too.
 */
export function parseOptionJson(entry: ServeOption, value: unknown, origin: string): unknown {
  if (typeof value === 'string') return parseOptionText(entry, value, origin);
  const fail = (why: string): never => {
    throw new ConfigError(`${origin}: ${why} (got ${JSON.stringify(value)})`);
  };
  switch (entry.type) {
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
        fail(`must be a non-negative whole number of ${entry.unit === 'count' ? 'units' : entry.unit}`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') fail('must be true or false');
      return value;
    case 'list':
      if (!Array.isArray(value) || value.some((item) => typeof item !== 'string'))
        fail('must be an array of strings');
      return value;
    default:
      return fail('must be a string');
  }
}

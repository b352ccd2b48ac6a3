/**
 * The JSON config file of `ferry serve`: its keys are the `ServerConfig` keys plus `host`, `port`,
 * `webDir` and `web`. Unknown keys are refused, because a misspelt key that is silently ignored leaves the
 * server running on a default the operator believes they changed.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '@ferry/server';
import { DEFAULT_CONFIG_FILE, OPTIONS_BY_KEY, parseOptionJson, SERVE_OPTIONS } from './options.ts';
import type { GivenValue } from './serve-args.ts';
import { closest } from './suggest.ts';

/** Keys whose values are file-system paths, resolved against the file's own directory. */
const PATH_KEYS = new Set(['dataDir', 'webDir']);

export interface ConfigFile {
  /** Absolute path of the file that was read. */
  readonly path: string;
  readonly values: ReadonlyMap<string, GivenValue>;
}

/**
 * Reads the config file. `explicit` is the path given by `--config` or `FERRY_CONFIG` (with where
 * it came from); without it, `ferry.config.json` in `cwd` is read if it exists, and its absence is
 * not an error.
 */
export function loadConfigFile(
  explicit: { path: string; origin: string } | undefined,
  cwd: string,
): ConfigFile | undefined {
  const path = resolve(cwd, explicit?.path ?? DEFAULT_CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return undefined;
    const given = explicit ? ` (from ${explicit.origin})` : '';
    if (code === 'ENOENT') throw new ConfigError(`config file ${path}${given} does not exist`);
    throw new ConfigError(`cannot read config file ${path}${given}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ConfigError(`config file ${path} must hold a JSON object of options`);

  const allowed = SERVE_OPTIONS.filter((entry) => entry.inConfigFile).map((entry) => entry.key);
  const values = new Map<string, GivenValue>();
  for (const [key, raw] of Object.entries(json)) {
    const entry = OPTIONS_BY_KEY.get(key);
    if (!entry?.inConfigFile) {
      const guess = closest(key, allowed);
      throw new ConfigError(
        `config file ${path}: unknown key "${key}"${guess ? ` (did you mean "${guess}"?)` : ''}; ` +
          `the keys are ${allowed.join(', ')}`,
      );
    }
    const origin = `"${key}" in ${path}`;
    let value = parseOptionJson(entry, raw, origin);
    // The file travels with its data directory more often than with the shell it is started from,
    // so a relative path means "next to the file", not "wherever ferry happens to be started".
    if (PATH_KEYS.has(key) && typeof value === 'string' && !isAbsolute(value))
      value = resolve(dirname(path), value);
    values.set(key, { value, origin });
  }
  return { path, values };
}

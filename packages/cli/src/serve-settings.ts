/**
 * One settings object for `ferry serve` from three sources. Precedence, highest first: flags,
 * `FERRY_*` environment variables, the config file, the defaults. Each value remembers where it
 * came from, so an error names the flag, variable or file key to fix.
 */
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, normalizeConfig, type ServerConfig } from '@ferry/server';
import { loadConfigFile } from './config-file.ts';
import { DEFAULT_HOST, DEFAULT_PORT, OPTIONS_BY_KEY, parseOptionText, SERVE_OPTIONS } from './options.ts';
import type { GivenValue, ServeArgs } from './serve-args.ts';
import { DEFAULT_WEB_DIR } from './web-dir.ts';

export interface ServeSettings {
  readonly host: string;
  readonly port: number;
  /** Whether the web app is served at `/` (`--no-web`: only the API). */
  readonly web: boolean;
  /** The web app's directory, absolute. */
  readonly webDir: string;
  /** Absolute path of the config file that was read, if any. */
  readonly configFile: string | undefined;
  /** The normalized server configuration (defaults filled in, validated, frozen). */
  readonly server: Readonly<ServerConfig>;
  /** Option key → where its value came from: a flag, a variable, a file key, or `default`. */
  readonly origins: ReadonlyMap<string, string>;
}

export type Environment = Readonly<Record<string, string | undefined>>;

/** Reads every `FERRY_*` variable that names an option. An empty variable counts as unset. */
export function readEnvironment(env: Environment): Map<string, GivenValue> {
  const values = new Map<string, GivenValue>();
  for (const entry of SERVE_OPTIONS) {
    const text = env[entry.env];
    if (text === undefined || text === '') continue;
    values.set(entry.key, { value: parseOptionText(entry, text, entry.env), origin: entry.env });
  }
  return values;
}

/** Merges the sources and validates the result. Throws `ConfigError` naming the offending source. */
export function resolveServeSettings(args: ServeArgs, env: Environment, cwd: string): ServeSettings {
  const fromEnv = readEnvironment(env);
  const configPath = args.values.get('config') ?? fromEnv.get('config');
  const file = loadConfigFile(
    configPath ? { path: configPath.value as string, origin: configPath.origin } : undefined,
    cwd,
  );
  const layers = [args.values, fromEnv, file?.values ?? new Map<string, GivenValue>()];

  const given: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  for (const entry of SERVE_OPTIONS) {
    const winner = layers.map((layer) => layer.get(entry.key)).find((value) => value !== undefined);
    origins.set(entry.key, winner?.origin ?? 'default');
    if (winner) given[entry.key] = winner.value;
  }

  const host = (given['host'] as string | undefined) ?? DEFAULT_HOST;
  const port = (given['port'] as number | undefined) ?? DEFAULT_PORT;
  if (port > 65_535)
    throw new ConfigError(`${origins.get('port')}: port must be at most 65535 (got ${port})`);
  const web = (given['web'] as boolean | undefined) ?? true;
  const givenWebDir = (given['webDir'] as string | undefined) ?? DEFAULT_WEB_DIR;
  const webDir = isAbsolute(givenWebDir) ? givenWebDir : resolve(cwd, givenWebDir);

  const partial: Partial<ServerConfig> = {};
  for (const entry of SERVE_OPTIONS)
    if (entry.server && entry.key in given)
      (partial as Record<string, unknown>)[entry.key] = given[entry.key];

  let server: Readonly<ServerConfig>;
  try {
    server = normalizeConfig(partial);
  } catch (error) {
    throw withOrigin(error, origins);
  }
  return { host, port, web, webDir, configFile: file?.path, server, origins };
}

/**
 * `normalizeConfig` names the field (`option "maxSize" must be at least 1`); the operator typed a
 * flag or a variable, so say which one.
 */
function withOrigin(error: unknown, origins: ReadonlyMap<string, string>): unknown {
  if (!(error instanceof ConfigError)) return error;
  const key = /option "(\w+)"/.exec(error.message)?.[1];
  const origin = key && OPTIONS_BY_KEY.has(key) ? origins.get(key) : undefined;
  if (!origin || origin === 'default') return error;
  return new ConfigError(`${origin}: ${error.message}`);
}

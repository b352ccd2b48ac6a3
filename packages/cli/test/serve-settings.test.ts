import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, normalizeConfig } from '@ferry/server';
import { SERVE_OPTIONS, type ServeOption } from '../src/options.ts';
import { parseServeArgs } from '../src/serve-args.ts';
import { type Environment, resolveServeSettings, type ServeSettings } from '../src/serve-settings.ts';
import { UsageError } from '../src/usage-error.ts';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-cli-settings-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

let dirCount = 0;
/** A fresh working directory, optionally holding ferry.config.json with `file`. */
function workDir(file?: unknown): string {
  const dir = join(root, `case-${dirCount++}`);
  mkdirSync(dir);
  if (file !== undefined) writeFileSync(join(dir, 'ferry.config.json'), JSON.stringify(file));
  return dir;
}

function resolve(argv: string[], env: Environment = {}, cwd = workDir()): ServeSettings {
  return resolveServeSettings(parseServeArgs(argv), env, cwd);
}

function settingValue(settings: ServeSettings, key: string): unknown {
  if (key === 'host') return settings.host;
  if (key === 'port') return settings.port;
  if (key === 'web') return settings.web;
  if (key === 'webDir') return settings.webDir;
  return (settings.server as unknown as Record<string, unknown>)[key];
}

function failure(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError || error instanceof UsageError, String(error));
    return error;
  }
  assert.fail('expected an error');
}

/**
 * Three values for an option, one per source, such that every pair differs — booleans and
 * two-valued choices alternate, so file/env and env/flag still differ.
 */
function samples(entry: ServeOption): [unknown, unknown, unknown] {
  switch (entry.type) {
    case 'integer':
      return [11, 22, 33];
    case 'boolean':
      return [true, false, true];
    case 'enum': {
      const values = entry.values ?? [];
      return [values[0], values[1], values[0]];
    }
    case 'list':
      if (entry.key === 'allowTypes') return [['image/*'], ['image/png', 'application/pdf'], ['text/plain']];
      if (entry.key === 'hookEvents') return [['finished'], ['created', 'pre-create'], ['rejected']];
      return [
        ['https://file.example'],
        ['https://env.example', 'https://b.example'],
        ['https://flag.example'],
      ];
    case 'string':
      if (entry.key === 'hookUrl') {
        return ['https://file.example/hooks', 'https://env.example/hooks', 'https://flag.example/hooks'];
      }
      if (entry.key === 'hookSecret') return ['f'.repeat(32), 'e'.repeat(40), 'g'.repeat(48)];
      // Absolute and slash-ended, so path resolution and basePath normalization keep them as they are.
      return ['/from-file/', '/from-env/', '/from-flag/'];
  }
}

function asText(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

function asFlag(entry: ServeOption, value: unknown): string[] {
  if (entry.type === 'boolean') return [value ? entry.flag : `--no-${entry.flag.slice(2)}`];
  return [entry.flag, asText(value)];
}

/** What an option needs beside it to be valid: credentialed CORS needs an exact origin list. */
const COMPANIONS: Partial<Record<string, Record<string, string>>> = {
  corsCredentials: { FERRY_CORS_ORIGINS: 'https://app.example' },
  hookUrl: { FERRY_HOOK_SECRET: 's'.repeat(32) },
};

describe('precedence: flags > FERRY_* environment > config file > defaults', () => {
  it('uses the defaults when nothing is given', () => {
    const settings = resolve([]);
    assert.equal(settings.host, '127.0.0.1');
    assert.equal(settings.port, 1080);
    assert.equal(settings.configFile, undefined);
    assert.deepEqual(settings.server, normalizeConfig({}));
    for (const entry of SERVE_OPTIONS) assert.equal(settings.origins.get(entry.key), 'default');
  });

  for (const entry of SERVE_OPTIONS.filter((option) => option.inConfigFile)) {
    it(`resolves ${entry.key} from ${entry.flag}, ${entry.env} and the file`, () => {
      const [fromFile, fromEnv, fromFlag] = samples(entry);
      const cwd = workDir({ [entry.key]: fromFile });
      // Options valid only together with another one get it from the environment throughout.
      const base: Record<string, string> = COMPANIONS[entry.key] ?? {};
      const env = { ...base, [entry.env]: asText(fromEnv) };

      const fileOnly = resolve([], base, cwd);
      assert.deepEqual(settingValue(fileOnly, entry.key), fromFile);
      assert.match(
        fileOnly.origins.get(entry.key) ?? '',
        new RegExp(`^"${entry.key}" in .*ferry\\.config\\.json$`),
      );

      const withEnv = resolve([], env, cwd);
      assert.deepEqual(settingValue(withEnv, entry.key), fromEnv);
      assert.equal(withEnv.origins.get(entry.key), entry.env);

      const withFlag = resolve(asFlag(entry, fromFlag), env, cwd);
      assert.deepEqual(settingValue(withFlag, entry.key), fromFlag);
      assert.equal(withFlag.origins.get(entry.key), entry.flag);

      // The flag alone, and the env alone, over the defaults.
      assert.deepEqual(settingValue(resolve(asFlag(entry, fromEnv), base), entry.key), fromEnv);
      assert.deepEqual(
        settingValue(resolve([], { ...base, [entry.env]: asText(fromFlag) }), entry.key),
        fromFlag,
      );
    });
  }

  it('resolves each option on its own', () => {
    const cwd = workDir({ port: 2000, maxSize: '1GiB', logLevel: 'warn' });
    const settings = resolve(['--port', '3000'], { FERRY_MAX_SIZE: '2GiB' }, cwd);
    assert.equal(settings.port, 3000);
    assert.equal(settings.server.maxSize, 2 * 1024 ** 3);
    assert.equal(settings.server.logLevel, 'warn');
    assert.equal(settings.host, '127.0.0.1');
  });

  it('treats an empty variable as unset and ignores FERRY_* names that are no option', () => {
    const settings = resolve([], { FERRY_PORT: '', FERRY_REQUIRE_SERVICES: '1', FERRY_DATADIR: 'x' });
    assert.equal(settings.port, 1080);
    assert.equal(settings.server.dataDir, './ferry-data');
  });

  it('joins a repeated list flag', () => {
    const settings = resolve([
      '--cors-origins',
      'https://a.example,https://b.example',
      '--cors-origins',
      'https://c.example',
    ]);
    assert.deepEqual(settings.server.corsOrigins, [
      'https://a.example',
      'https://b.example',
      'https://c.example',
    ]);
  });

  it('lets the last of a repeated flag win', () => {
    assert.equal(resolve(['--port', '1', '--port', '2']).port, 2);
    assert.equal(resolve(['--trust-proxy', '--no-trust-proxy']).server.trustProxy, false);
  });

  it('accepts --flag=value', () => {
    assert.equal(resolve(['--max-size=10MB']).server.maxSize, 10_000_000);
  });
});

describe('web app', () => {
  it("is served by default from the repository's apps/web/dist, whatever the working directory", () => {
    const settings = resolve([]);
    assert.equal(settings.web, true);
    assert.equal(settings.webDir, fileURLToPath(new URL('../../../apps/web/dist', import.meta.url)));
    assert.equal(settings.origins.get('webDir'), 'default');
  });

  it('reads a relative --web-dir or FERRY_WEB_DIR from the working directory, and one in the file next to the file', () => {
    const cwd = workDir({ webDir: 'site' });
    assert.equal(resolve([], {}, cwd).webDir, join(cwd, 'site'));
    const elsewhere = workDir();
    assert.equal(resolve(['--web-dir', 'build'], {}, elsewhere).webDir, join(elsewhere, 'build'));
    assert.equal(resolve([], { FERRY_WEB_DIR: 'out' }, elsewhere).webDir, join(elsewhere, 'out'));
  });

  it('is turned off by --no-web, FERRY_WEB=0 or "web": false', () => {
    assert.equal(resolve(['--no-web']).web, false);
    assert.equal(resolve([], { FERRY_WEB: '0' }).web, false);
    assert.equal(resolve([], {}, workDir({ web: false })).web, false);
    assert.equal(resolve(['--web'], { FERRY_WEB: 'off' }).web, true);
  });
});

describe('config file', () => {
  it('is ./ferry.config.json when it exists, read with units and relative paths next to the file', () => {
    const cwd = workDir({
      dataDir: 'data',
      maxSize: '5GiB',
      expirySeconds: '7d',
      corsOrigins: 'https://a.example',
    });
    const settings = resolve([], {}, cwd);
    assert.equal(settings.configFile, join(cwd, 'ferry.config.json'));
    assert.equal(settings.server.dataDir, join(cwd, 'data'));
    assert.equal(settings.server.maxSize, 5 * 1024 ** 3);
    assert.equal(settings.server.expirySeconds, 604_800);
    assert.deepEqual(settings.server.corsOrigins, ['https://a.example']);
  });

  it('keeps a relative path given by flag or environment as typed (relative to the working directory)', () => {
    const cwd = workDir({ dataDir: 'data' });
    assert.equal(resolve(['--data-dir', 'mine'], {}, cwd).server.dataDir, 'mine');
    assert.equal(resolve([], { FERRY_DATA_DIR: 'theirs' }, cwd).server.dataDir, 'theirs');
  });

  it('is taken from --config over FERRY_CONFIG over the default name', () => {
    const cwd = workDir({ port: 1 });
    const other = join(cwd, 'other.json');
    const third = join(cwd, 'third.json');
    writeFileSync(other, JSON.stringify({ port: 2 }));
    writeFileSync(third, JSON.stringify({ port: 3 }));
    assert.equal(resolve([], {}, cwd).port, 1);
    assert.equal(resolve([], { FERRY_CONFIG: 'other.json' }, cwd).port, 2);
    const both = resolve(['--config', third], { FERRY_CONFIG: 'other.json' }, cwd);
    assert.equal(both.port, 3);
    assert.equal(both.configFile, third);
  });

  it('must exist when named', () => {
    const cwd = workDir();
    assert.match(
      failure(() => resolve(['--config', 'nope.json'], {}, cwd)).message,
      /nope\.json \(from --config\) does not exist/,
    );
    assert.match(
      failure(() => resolve([], { FERRY_CONFIG: 'gone.json' }, cwd)).message,
      /gone\.json \(from FERRY_CONFIG\) does not exist/,
    );
  });

  it('refuses unknown keys, naming the key, a close match and the valid keys', () => {
    const message = failure(() => resolve([], {}, workDir({ port: 1, dataDirectory: '/x' }))).message;
    assert.match(message, /unknown key "dataDirectory" \(did you mean "dataDir"\?\)/);
    assert.match(message, /the keys are host, port, dataDir, basePath/);
    assert.match(
      failure(() => resolve([], {}, workDir({ config: 'x.json' }))).message,
      /unknown key "config"/,
    );
  });

  it('refuses a file that is not a JSON object', () => {
    const cwd = workDir();
    writeFileSync(join(cwd, 'ferry.config.json'), '{ "port": 1080, }');
    assert.match(failure(() => resolve([], {}, cwd)).message, /ferry\.config\.json is not valid JSON/);
    assert.match(failure(() => resolve([], {}, workDir([1, 2]))).message, /must hold a JSON object/);
  });

  it('names the file key of a bad value', () => {
    const message = failure(() => resolve([], {}, workDir({ hashUploads: 'sometimes' }))).message;
    assert.match(message, /^"hashUploads" in .*ferry\.config\.json: "sometimes" is not a boolean/);
  });
});

describe('bad values', () => {
  const cases: Array<[string[], Environment, RegExp]> = [
    [['--max-size', 'lots'], {}, /^--max-size: "lots" is not a size/],
    [[], { FERRY_MAX_SIZE: '5XB' }, /^FERRY_MAX_SIZE: "5XB" has an unknown unit "XB"/],
    [['--max-size', '0'], {}, /^--max-size: option "maxSize" must be at least 1/],
    [[], { FERRY_PORT: '70000' }, /^FERRY_PORT: port must be at most 65535 \(got 70000\)/],
    [['--port', '-1'], {}, /^--port needs a value; one that starts with "-" is written --port=-…$/],
    [['--port=-1'], {}, /^--port: "-1" is not a non-negative whole number$/],
    [['--durability', 'sometimes'], {}, /^--durability: "sometimes" is not one of none, fsync/],
    [[], { FERRY_TRUST_PROXY: 'maybe' }, /^FERRY_TRUST_PROXY: "maybe" is not a boolean/],
    [['--lock-wait-ms', '1.5ms'], {}, /^--lock-wait-ms: "1.5ms" is not a whole number of milliseconds/],
    [['--data-dir', ''], {}, /^--data-dir: must not be empty/],
  ];
  for (const [argv, env, message] of cases) {
    it(`${[...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')} → ${message.source}`, () => {
      assert.match(failure(() => resolve(argv, env)).message, message);
    });
  }
});

describe('command line', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--data-dri', '/x'], /^unknown option --data-dri \(did you mean --data-dir\?\)$/],
    [['--dataDir', '/x'], /did you mean --data-dir\?/],
    [['--no-trustproxy'], /did you mean --no-trust-proxy\?/],
    [['--completely-unrelated'], /^unknown option --completely-unrelated$/],
    [['--max-size'], /^--max-size needs a value$/],
    [['--hash-uploads=yes'], /^--hash-uploads takes no value: write --hash-uploads or --no-hash-uploads$/],
    [['now'], /^unexpected argument "now": ferry serve takes only options$/],
  ];
  for (const [argv, message] of cases) {
    it(`refuses ${argv.join(' ')} as a usage error pointing at --help`, () => {
      const error = failure(() => parseServeArgs(argv));
      assert.ok(error instanceof UsageError);
      assert.match(error.message, message);
      assert.equal(error.helpCommand, 'ferry serve --help');
    });
  }

  it('answers --help even next to values it would refuse', () => {
    assert.equal(parseServeArgs(['--max-size', 'lots', '--help']).help, true);
    assert.equal(parseServeArgs(['-h']).help, true);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONFIG_FIELDS, ConfigError, DEFAULT_CONFIG } from '@ferry/server';
import {
  envName,
  kebabCase,
  OPTIONS_BY_KEY,
  parseOptionJson,
  parseOptionText,
  SERVE_OPTIONS,
} from '../src/options.ts';

function option(key: string) {
  const entry = OPTIONS_BY_KEY.get(key);
  assert.ok(entry, `no option ${key}`);
  return entry;
}

describe('option names', () => {
  it('follow camelCase → --kebab-case → FERRY_SCREAMING_SNAKE', () => {
    assert.equal(kebabCase('dataDir'), 'data-dir');
    assert.equal(kebabCase('sweepIntervalSeconds'), 'sweep-interval-seconds');
    assert.equal(envName('dataDir'), 'FERRY_DATA_DIR');
    assert.equal(envName('maxSize'), 'FERRY_MAX_SIZE');
    assert.equal(option('dataDir').flag, '--data-dir');
    assert.equal(option('dataDir').env, 'FERRY_DATA_DIR');
    assert.equal(option('corsOrigins').flag, '--cors-origins');
    assert.equal(option('shutdownTimeoutMs').env, 'FERRY_SHUTDOWN_TIMEOUT_MS');
    assert.equal(option('port').env, 'FERRY_PORT');
    assert.equal(option('config').env, 'FERRY_CONFIG');
  });

  it('exist for every CONFIG_FIELDS key, with its type, values and default', () => {
    for (const field of CONFIG_FIELDS) {
      const entry = option(field.key);
      assert.equal(entry.server, true);
      assert.equal(entry.type, field.type);
      assert.deepEqual(entry.values, field.values);
      assert.deepEqual(entry.defaultValue, DEFAULT_CONFIG[field.key]);
      assert.match(entry.flag, /^--[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      assert.equal(entry.flag.slice(2).replaceAll('-', ''), field.key.toLowerCase());
      assert.equal(entry.env, `FERRY_${entry.flag.slice(2).replaceAll('-', '_').toUpperCase()}`);
    }
  });

  it('are unique, and only host, port, config and the web app are not server fields', () => {
    assert.equal(new Set(SERVE_OPTIONS.map((entry) => entry.flag)).size, SERVE_OPTIONS.length);
    assert.equal(new Set(SERVE_OPTIONS.map((entry) => entry.env)).size, SERVE_OPTIONS.length);
    assert.deepEqual(
      SERVE_OPTIONS.filter((entry) => !entry.server).map((entry) => entry.key),
      ['host', 'port', 'config', 'webDir', 'web'],
    );
    assert.equal(SERVE_OPTIONS.length, CONFIG_FIELDS.length + 5);
  });

  it('give byte fields sizes and time fields durations', () => {
    for (const key of ['maxSize', 'maxHeaderBytes', 'maxMetadataBytes'])
      assert.equal(option(key).unit, 'bytes');
    for (const key of ['lockWaitMs', 'stallMs', 'bodyTimeoutMs', 'shutdownTimeoutMs'])
      assert.equal(option(key).unit, 'milliseconds');
    for (const key of ['expirySeconds', 'sweepIntervalSeconds']) assert.equal(option(key).unit, 'seconds');
    assert.equal(option('port').unit, 'count');
  });
});

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

describe('parseOptionText', () => {
  it('reads sizes, durations, lists, booleans and choices', () => {
    assert.equal(parseOptionText(option('maxSize'), '5GiB', '--max-size'), 5 * 1024 ** 3);
    assert.equal(parseOptionText(option('bodyTimeoutMs'), '2m', '--body-timeout-ms'), 120_000);
    assert.equal(parseOptionText(option('expirySeconds'), '7d', '--expiry-seconds'), 604_800);
    assert.deepEqual(parseOptionText(option('corsOrigins'), ' https://a.example, https://b.example ,', 'x'), [
      'https://a.example',
      'https://b.example',
    ]);
    for (const word of ['1', 'true', 'TRUE', 'yes', 'Yes', 'on'])
      assert.equal(parseOptionText(option('trustProxy'), word, 'x'), true, word);
    for (const word of ['0', 'false', 'False', 'no', 'NO', 'off'])
      assert.equal(parseOptionText(option('trustProxy'), word, 'x'), false, word);
    assert.equal(parseOptionText(option('durability'), 'fsync', 'x'), 'fsync');
  });

  it('names the source and the accepted forms when a value is wrong', () => {
    assert.match(
      configError(() => parseOptionText(option('maxSize'), 'huge', 'FERRY_MAX_SIZE')),
      /^FERRY_MAX_SIZE: "huge" is not a size.*5GiB/,
    );
    assert.match(
      configError(() => parseOptionText(option('hashUploads'), 'maybe', 'FERRY_HASH_UPLOADS')),
      /^FERRY_HASH_UPLOADS: "maybe" is not a boolean \(use 1\/0, true\/false, yes\/no/,
    );
    assert.match(
      configError(() => parseOptionText(option('durability'), 'FSYNC', '--durability')),
      /^--durability: "FSYNC" is not one of none, fsync$/,
    );
    assert.match(
      configError(() => parseOptionText(option('logLevel'), 'verbose', '--log-level')),
      /fatal, error, warn, info, debug, trace, silent/,
    );
    assert.match(
      configError(() => parseOptionText(option('dataDir'), '', '--data-dir')),
      /must not be empty/,
    );
    assert.match(
      configError(() => parseOptionText(option('stallMs'), '-5', '--stall-ms')),
      /is not a duration/,
    );
  });
});

describe('parseOptionJson', () => {
  it('takes native JSON values and strings written like flags', () => {
    assert.equal(parseOptionJson(option('maxSize'), 1024, 'f'), 1024);
    assert.equal(parseOptionJson(option('maxSize'), '1KiB', 'f'), 1024);
    assert.equal(parseOptionJson(option('hashUploads'), true, 'f'), true);
    assert.equal(parseOptionJson(option('hashUploads'), 'yes', 'f'), true);
    assert.deepEqual(parseOptionJson(option('corsOrigins'), ['https://a.example'], 'f'), [
      'https://a.example',
    ]);
    assert.deepEqual(parseOptionJson(option('corsOrigins'), 'https://a.example,https://b.example', 'f'), [
      'https://a.example',
      'https://b.example',
    ]);
  });

  it('refuses values of the wrong JSON type', () => {
    assert.match(
      configError(() => parseOptionJson(option('maxSize'), -1, 'k')),
      /^k: must be a non-negative/,
    );
    assert.match(
      configError(() => parseOptionJson(option('maxSize'), 1.5, 'k')),
      /whole number of bytes/,
    );
    assert.match(
      configError(() => parseOptionJson(option('hashUploads'), 1, 'k')),
      /must be true or false/,
    );
    assert.match(
      configError(() => parseOptionJson(option('corsOrigins'), [1], 'k')),
      /array of strings/,
    );
    assert.match(
      configError(() => parseOptionJson(option('dataDir'), 5, 'k')),
      /must be a string \(got 5\)/,
    );
    assert.match(
      configError(() => parseOptionJson(option('durability'), null, 'k')),
      /must be a string/,
    );
  });
});

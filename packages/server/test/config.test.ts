import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, normalizeConfig } from '../src/config.ts';

describe('normalizeConfig: URL paths', () => {
  it('gives the tus and parts paths a leading and a trailing slash', () => {
    const config = normalizeConfig({ basePath: 'tus', partsPath: 'api/parts' });
    assert.equal(config.basePath, '/tus/');
    assert.equal(config.partsPath, '/api/parts/');
    assert.equal(normalizeConfig().partsPath, '/uploads/');
  });

  it('refuses a parts path inside the tus path and the other way round', () => {
    assert.throws(() => normalizeConfig({ basePath: '/files/', partsPath: '/files/parts/' }), ConfigError);
    assert.throws(() => normalizeConfig({ basePath: '/api/tus/', partsPath: '/api/' }), ConfigError);
    assert.throws(() => normalizeConfig({ basePath: '/same/', partsPath: '/same' }), ConfigError);
  });
});

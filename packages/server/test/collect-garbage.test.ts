import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COLLECTOR_KEY, collectGarbage, droppedBytesCollector } from '../src/service/collect-garbage.ts';

const registry = globalThis as { [COLLECTOR_KEY]?: unknown; gc?: unknown };

describe('collectGarbage', () => {
  afterEach(() => {
    delete registry[COLLECTOR_KEY];
    delete registry.gc;
  });

  it('asks the registered function for the collection, else globalThis.gc, else does nothing', () => {
    assert.equal(registry.gc, undefined, 'this test runs without --expose-gc');
    collectGarbage('minor');
    const exposed: unknown[] = [];
    registry.gc = (options: unknown) => exposed.push(options);
    collectGarbage('minor');
    assert.deepEqual(exposed, [{ type: 'minor' }]);
    const registered: unknown[] = [];
    registry[COLLECTOR_KEY] = (options: unknown) => registered.push(options);
    collectGarbage('minor');
    collectGarbage('major');
    assert.deepEqual(registered, [{ type: 'minor' }, { type: 'major' }]);
    assert.equal(exposed.length, 1, 'the registered function wins');
    registry[COLLECTOR_KEY] = 'not a function';
    delete registry.gc;
    collectGarbage('minor');
  });

  it('droppedBytesCollector: a young collection per so many bytes dropped, every so many a full one', () => {
    const asked: string[] = [];
    registry[COLLECTOR_KEY] = ({ type }: { type: string }) => asked.push(type);
    const garbage = droppedBytesCollector(1000, 3);
    garbage.dropped(999);
    assert.deepEqual(asked, []);
    garbage.dropped(1);
    assert.deepEqual(asked, ['minor']);
    // A chunk that crosses the threshold keeps its remainder: 1500 + 500 make the next thousand.
    garbage.dropped(1500);
    garbage.dropped(500);
    assert.deepEqual(asked, ['minor', 'minor', 'major']);
    for (let i = 0; i < 6; i++) garbage.dropped(500);
    assert.deepEqual(asked, ['minor', 'minor', 'major', 'minor', 'minor', 'major']);
  });

  it('the ferry command registers a working collector and leaves the global scope without gc', () => {
    // `ferry --version` runs the command's start-up and exits; the flag check runs in its process.
    const bin = fileURLToPath(new URL('../../cli/bin/ferry.js', import.meta.url));
    const probe = `
      process.argv = [process.argv[0], ${JSON.stringify(bin)}, '--version'];
      process.exit = () => {};
      await import(${JSON.stringify(bin)});
      const collect = globalThis[Symbol.for('ferry.collectGarbage')];
      collect({ type: 'minor' });
      const vm = await import('node:vm');
      console.log(JSON.stringify({ type: typeof collect, gc: typeof globalThis.gc, context: vm.runInNewContext('typeof gc') }));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const last = run.stdout.trim().split('\n').at(-1)!;
    assert.deepEqual(JSON.parse(last), { type: 'function', gc: 'undefined', context: 'undefined' });
  });
});

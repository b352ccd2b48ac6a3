/** Renders: state changes at once, progress at most once per interval, many changes as one render. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RenderScheduler } from '../src/render-scheduler.ts';
import { settle } from './fake-upload.ts';

describe('render scheduler', () => {
  it('coalesces, renders state changes at once and progress at most once per interval', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let clock = 1000;
    let renders = 0;
    const scheduler = new RenderScheduler(
      250,
      () => renders++,
      () => clock,
    );

    scheduler.request(false);
    scheduler.request(false);
    await settle();
    assert.equal(renders, 0, 'progress never renders inside the task that reported it');
    t.mock.timers.tick(0);
    assert.equal(renders, 1, 'progress after a quiet time renders in the next task, once');

    clock += 100;
    for (let i = 0; i < 10; i++) scheduler.request(false);
    await settle();
    assert.equal(renders, 1, 'progress within the interval waits');
    clock += 150;
    t.mock.timers.tick(150);
    assert.equal(renders, 2, 'and renders once when the interval is over');

    clock += 10;
    scheduler.request(false);
    scheduler.request(true);
    await settle();
    assert.equal(renders, 3, 'a state change does not wait; it carries the pending progress');
    t.mock.timers.tick(250);
    assert.equal(renders, 3, 'the progress it carried does not render again');
  });
});

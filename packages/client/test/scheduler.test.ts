/** The sliding-window pool and its adaptive concurrency; the state machine; the chunk planner; the rate limiter. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChunkPlanner, chunkSizeBySize } from '../src/core/planner.ts';
import { createRateLimiter } from '../src/core/rate-limit.ts';
import { ConcurrencyController, runPool } from '../src/core/scheduler.ts';
import { canTransition, StateMachine, type UploadState } from '../src/core/state.ts';

const MiB = 1024 * 1024;

describe('runPool', () => {
  it('is a sliding window: a slow task never holds the next ones back', async () => {
    // Task 0 runs until every other task has started (or 5 s passed). In batches of 2, task 2
    // could not start before task 0 ended; in a window, tasks 1..7 go through the other slot.
    const startedWhileFirstRan: number[] = [];
    let firstRunning = false;
    let releaseFirst = () => {};
    const othersStarted = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    await runPool(
      [0, 1, 2, 3, 4, 5, 6, 7],
      async (index) => {
        if (index === 0) {
          firstRunning = true;
          await Promise.race([othersStarted, sleep(5000)]);
          firstRunning = false;
          return 1;
        }
        if (firstRunning) startedWhileFirstRan.push(index);
        if (startedWhileFirstRan.length === 7) releaseFirst();
        await sleep(1);
        return 1;
      },
      {
        concurrency: new ConcurrencyController({ max: 2, adaptive: false }),
        signal: new AbortController().signal,
      },
    );
    assert.deepEqual(startedWhileFirstRan, [1, 2, 3, 4, 5, 6, 7]);
  });

  it('with a window, runs no item further than the window from the first unfinished one', async () => {
    // Item 0 runs until the pool has had its chance to start item 4: it is let go in the turn after
    // item 3 finished (whose completion tries to start the next items at once). Items 1..9 finish
    // at once. With a window of 4, only items 1..3 may start while item 0 runs.
    const startedWhileFirstRan: number[] = [];
    let firstRunning = false;
    let releaseFirst = () => {};
    await runPool(
      Array.from({ length: 10 }, (_, i) => i),
      async (index) => {
        if (index === 0) {
          firstRunning = true;
          await new Promise<void>((resolve) => {
            releaseFirst = resolve;
          });
          firstRunning = false;
          return 1;
        }
        if (firstRunning) startedWhileFirstRan.push(index);
        await sleep(1);
        if (index === 3) setImmediate(() => releaseFirst());
        return 1;
      },
      {
        concurrency: new ConcurrencyController({ max: 2, adaptive: false }),
        signal: new AbortController().signal,
        window: 4,
      },
    );
    assert.deepEqual(startedWhileFirstRan, [1, 2, 3]);
  });

  it('never runs more tasks than the concurrency allows', async () => {
    let running = 0;
    let peak = 0;
    await runPool(
      Array.from({ length: 40 }, (_, i) => i),
      async () => {
        running += 1;
        peak = Math.max(peak, running);
        await sleep(2 + Math.random() * 5);
        running -= 1;
        return 1;
      },
      {
        concurrency: new ConcurrencyController({ max: 3, adaptive: false }),
        signal: new AbortController().signal,
      },
    );
    assert.equal(peak, 3);
  });

  it('on a failure: aborts the others, waits for them, rejects with that failure', async () => {
    const failure = new Error('part 3 failed');
    let aborted = 0;
    let settledAfterReject = false;
    const pool = runPool(
      [1, 2, 3, 4, 5, 6],
      async (n, signal) => {
        if (n === 3) throw failure;
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        await sleep(20);
        aborted += 1;
        return 0;
      },
      {
        concurrency: new ConcurrencyController({ max: 3, adaptive: false }),
        signal: new AbortController().signal,
      },
    );
    await assert.rejects(pool, (error) => error === failure);
    settledAfterReject = aborted === 2;
    assert.ok(settledAfterReject, 'the two running tasks ended before the pool rejected');
  });

  it('an abort from outside stops it with the abort reason', async () => {
    const controller = new AbortController();
    const pool = runPool(
      [1, 2, 3],
      async (_n, signal) => {
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        return 0;
      },
      { concurrency: new ConcurrencyController({ max: 2 }), signal: controller.signal },
    );
    controller.abort(new Error('paused'));
    await assert.rejects(pool, /paused/);
  });

  it('resolves at once with nothing to do', async () => {
    await runPool([], async () => 0, {
      concurrency: new ConcurrencyController({ max: 2 }),
      signal: new AbortController().signal,
    });
  });
});

describe('ConcurrencyController', () => {
  it('starts at half the maximum and raises while throughput holds or improves', () => {
    let clock = 0;
    const controller = new ConcurrencyController({ max: 8 }, () => clock);
    assert.equal(controller.current, 4);
    controller.started();
    for (let task = 0; task < 60; task++) {
      clock += 10;
      controller.succeeded(1_000_000);
    }
    assert.equal(controller.current, 8);
  });

  it('reaches the maximum on a link where each connection is limited (the first window is measured from the first start)', () => {
    // Every task takes 400 ms whatever the concurrency (a per-connection window), so throughput
    // grows with every task added and the controller must climb to the maximum.
    let clock = 0;
    const controller = new ConcurrencyController({ max: 4 }, () => clock);
    const running: number[] = [];
    const fill = () => {
      while (running.length < controller.current) {
        controller.started();
        running.push(clock + 400 + running.length); // ends a little apart, as real requests do
      }
    };
    fill();
    for (let finished = 0; finished < 80; finished++) {
      running.sort((a, b) => a - b);
      clock = running.shift() as number;
      controller.succeeded(8_000_000);
      fill();
    }
    assert.equal(controller.current, 4);
  });

  it('undoes a raise that made throughput clearly worse, then holds', () => {
    let clock = 0;
    const controller = new ConcurrencyController({ max: 8 }, () => clock);
    // Window 1 (4 tasks) sets the baseline and raises to 5.
    for (let i = 0; i < 4; i++) {
      clock += 10;
      controller.succeeded(1_000_000);
    }
    assert.equal(controller.current, 5);
    // Window 2: the same bytes take three times as long → back to 4, and no more raises.
    for (let i = 0; i < 5; i++) {
      clock += 30;
      controller.succeeded(1_000_000);
    }
    assert.equal(controller.current, 4);
    for (let i = 0; i < 40; i++) {
      clock += 5;
      controller.succeeded(1_000_000);
    }
    assert.equal(controller.current, 4);
  });

  it('halves on a failure, never below the minimum; static without adaptation', () => {
    const controller = new ConcurrencyController({ max: 8, min: 2 });
    controller.failed();
    assert.equal(controller.current, 2);
    controller.failed();
    assert.equal(controller.current, 2);
    const fixed = new ConcurrencyController({ max: 6, adaptive: false });
    fixed.failed();
    fixed.succeeded(1);
    assert.equal(fixed.current, 6);
  });
});

describe('state machine', () => {
  it('allows the documented life and refuses the rest', () => {
    const seen: string[] = [];
    const machine = new StateMachine((state, previous) => seen.push(`${previous}→${state}`));
    for (const state of [
      'creating',
      'uploading',
      'paused',
      'uploading',
      'completing',
      'done',
    ] as UploadState[]) {
      machine.set(state);
    }
    assert.deepEqual(seen, [
      'idle→creating',
      'creating→uploading',
      'uploading→paused',
      'paused→uploading',
      'uploading→completing',
      'completing→done',
    ]);
    assert.throws(() => machine.set('uploading'), /done → uploading/);
  });

  it('terminal states lead nowhere; failed may be retried', () => {
    const all: UploadState[] = [
      'idle',
      'creating',
      'uploading',
      'paused',
      'completing',
      'done',
      'failed',
      'cancelled',
    ];
    for (const to of all) {
      assert.ok(!canTransition('done', to));
      assert.ok(!canTransition('cancelled', to));
    }
    assert.ok(canTransition('failed', 'uploading'));
    assert.ok(!canTransition('idle', 'uploading'));
    for (const from of ['idle', 'creating', 'uploading', 'paused', 'completing', 'failed'] as UploadState[]) {
      assert.ok(canTransition(from, 'cancelled'), from);
    }
  });
});

describe('ChunkPlanner', () => {
  it('fixed sizes, the last chunk holds the rest', () => {
    const planner = new ChunkPlanner({ chunkSize: 1000 }, 2500);
    assert.deepEqual(
      [planner.end(0, 2500), planner.end(1000, 2500), planner.end(2000, 2500)],
      [1000, 2000, 2500],
    );
    assert.throws(() => new ChunkPlanner({ chunkSize: 0 }, 1), { code: 'ERR_INVALID_OPTIONS' });
  });

  it('by size: a 32nd of the file within [8 MiB, 64 MiB]', () => {
    assert.equal(chunkSizeBySize(1000), 8 * MiB);
    assert.equal(chunkSizeBySize(1024 * MiB), 32 * MiB);
    assert.equal(chunkSizeBySize(100 * 1024 * MiB), 64 * MiB);
    assert.equal(chunkSizeBySize(undefined), 8 * MiB);
  });

  it('adaptive: moves toward targetSeconds of transfer, within its bounds', () => {
    const planner = new ChunkPlanner({ chunkSize: 'adaptive', targetSeconds: 2 }, 10_000 * MiB);
    // 1 MiB/s measured: the ideal is 2 MiB; the size moves halfway each time.
    for (let i = 0; i < 20; i++) planner.observe(planner.chunkSize, (planner.chunkSize / MiB) * 1000);
    assert.ok(Math.abs(planner.chunkSize - 2 * MiB) < 0.1 * MiB, String(planner.chunkSize));
    // 1 GiB/s: capped at maxChunkSize.
    for (let i = 0; i < 20; i++)
      planner.observe(planner.chunkSize, (planner.chunkSize / (1024 * MiB)) * 1000);
    assert.equal(planner.chunkSize, 64 * MiB);
  });
});

describe('rate limiter', () => {
  it('holds the rate over a second', async (t) => {
    // On a clock of its own that moves with the (mocked) timers 1 ms at a time, so a busy machine's
    // late timers cannot stretch the measured time.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let clock = 0;
    const limiter = createRateLimiter(2 * MiB, () => clock);
    let finished = false;
    const sending = (async () => {
      for (let i = 0; i < 12; i++) await limiter.take(256 * 1024);
      finished = true;
    })();
    while (!finished && clock < 10_000) {
      await new Promise((resolve) => setImmediate(resolve));
      clock += 1;
      t.mock.timers.tick(1);
    }
    await sending;
    const seconds = clock / 1000;
    // 3 MiB at 2 MiB/s with a 0.5 MiB burst: at least 1.25 s.
    assert.ok(seconds >= 1.2 && seconds < 2, `${seconds} s`);
  });
});

/**
 * The conformance suite every Locker backend runs: `describeLocker('memory', factory)`.
 * Each test gets a fresh locker; afterwards the suite closes it and then calls `cleanup`.
 * Waits are short (tens of ms) so the suite stays quick; assertions that something did NOT happen
 * give the backend a grace period first, so a distributed locker is not judged by one tick.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Lock, type Locker, LockTimeoutError } from '@ferry/server';

export interface LockerFixture {
  locker: Locker;
  cleanup(): Promise<void>;
}

/** Long enough that no test waits for it unless it means to. */
const LONG_MS = 10_000;
/** How long to give a backend before concluding that something did not happen. */
const GRACE_MS = 30;

async function eventually(check: () => boolean, what: string, withinMs = 2000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

/** Tracks whether a pending acquire has resolved yet. */
function track(promise: Promise<Lock>): { promise: Promise<Lock>; lock: Lock | undefined } {
  const state: { promise: Promise<Lock>; lock: Lock | undefined } = { promise, lock: undefined };
  promise.then(
    (lock) => {
      state.lock = lock;
    },
    () => {},
  );
  return state;
}

export function describeLocker(name: string, factory: () => Promise<LockerFixture>): void {
  describe(`Locker conformance: ${name}`, () => {
    let fixture: LockerFixture;
    let locker: Locker;
    beforeEach(async () => {
      fixture = await factory();
      locker = fixture.locker;
    });
    afterEach(async () => {
      await fixture.locker.close();
      await fixture.cleanup();
    });

    it('takes a free lock at once and reports its key', async () => {
      const lock = await locker.acquire('upload-1', { timeoutMs: 0 });
      assert.equal(lock.key, 'upload-1');
      await lock.release();
    });

    it('is exclusive: a second acquire waits until the holder releases', async () => {
      const first = await locker.acquire('k', { timeoutMs: LONG_MS });
      const second = track(locker.acquire('k', { timeoutMs: LONG_MS }));
      await sleep(GRACE_MS);
      assert.equal(second.lock, undefined);
      await first.release();
      const lock = await second.promise;
      assert.equal(lock.key, 'k');
      await lock.release();
    });

    it('hands the lock to waiters in arrival order', async () => {
      const holder = await locker.acquire('k', { timeoutMs: LONG_MS });
      const order: number[] = [];
      const waiters = [1, 2, 3, 4].map((n) =>
        locker.acquire('k', { timeoutMs: LONG_MS }).then(async (lock) => {
          order.push(n);
          await sleep(1);
          await lock.release();
        }),
      );
      await holder.release();
      await Promise.all(waiters);
      assert.deepEqual(order, [1, 2, 3, 4]);
    });

    it('asks the holder to release exactly when someone waits, once per waiting request', async () => {
      let holderAsked = 0;
      let waiterAsked = 0;
      const holder = await locker.acquire('k', {
        timeoutMs: LONG_MS,
        onReleaseRequested: () => holderAsked++,
      });
      await sleep(GRACE_MS);
      assert.equal(holderAsked, 0, 'nobody waits yet');
      const waiter = track(
        locker.acquire('k', { timeoutMs: LONG_MS, onReleaseRequested: () => waiterAsked++ }),
      );
      await eventually(() => holderAsked === 1, 'the holder is asked once');
      const third = track(locker.acquire('k', { timeoutMs: LONG_MS }));
      await eventually(() => holderAsked === 2, 'the holder is asked again by the second waiter');
      await sleep(GRACE_MS);
      assert.equal(holderAsked, 2);
      assert.equal(waiterAsked, 0, 'a waiter is not asked while it only waits');
      // The first waiter takes over while the third still waits behind it: it is asked at once.
      await holder.release();
      const second = await waiter.promise;
      await eventually(() => waiterAsked === 1, 'the new holder is asked, since someone waits');
      await second.release();
      const last = await third.promise;
      await sleep(GRACE_MS);
      assert.equal(holderAsked, 2, 'a released holder is not asked again');
      assert.equal(waiterAsked, 1);
      await last.release();
    });

    it('does not ask the holder when a different key is wanted', async () => {
      let asked = 0;
      const holder = await locker.acquire('a', { timeoutMs: LONG_MS, onReleaseRequested: () => asked++ });
      const other = await locker.acquire('b', { timeoutMs: LONG_MS });
      await sleep(GRACE_MS);
      assert.equal(asked, 0);
      await other.release();
      await holder.release();
    });

    it('times out with LockTimeoutError, and the timed-out waiter never gets the lock', async () => {
      const holder = await locker.acquire('k', { timeoutMs: LONG_MS });
      const started = Date.now();
      await assert.rejects(locker.acquire('k', { timeoutMs: 50 }), LockTimeoutError);
      assert.ok(Date.now() - started >= 40, 'waited roughly timeoutMs');
      await holder.release();
      // Were the timed-out request still queued, it would hold the lock now and this would time out.
      const next = await locker.acquire('k', { timeoutMs: 200 });
      await next.release();
    });

    it('with timeoutMs 0 fails at once when the lock is held', async () => {
      const holder = await locker.acquire('k', { timeoutMs: LONG_MS });
      await assert.rejects(locker.acquire('k', { timeoutMs: 0 }), LockTimeoutError);
      await holder.release();
    });

    it('rejects with the abort reason and leaves the queue when the signal aborts', async () => {
      const holder = await locker.acquire('k', { timeoutMs: LONG_MS });
      const order: string[] = [];
      const first = locker.acquire('k', { timeoutMs: LONG_MS });
      const controller = new AbortController();
      const aborted = locker.acquire('k', { timeoutMs: LONG_MS, signal: controller.signal });
      const third = locker.acquire('k', { timeoutMs: LONG_MS });
      const reason = new Error('client went away');
      controller.abort(reason);
      await assert.rejects(aborted, (error) => error === reason);
      await holder.release();
      const a = await first;
      order.push('first');
      await a.release();
      const c = await third;
      order.push('third');
      await c.release();
      assert.deepEqual(order, ['first', 'third']);
      const again = await locker.acquire('k', { timeoutMs: 0 });
      await again.release();
    });

    it('rejects at once with the reason of an already aborted signal', async () => {
      const reason = new Error('already gone');
      await assert.rejects(
        locker.acquire('k', { timeoutMs: LONG_MS, signal: AbortSignal.abort(reason) }),
        (error) => error === reason,
      );
      const lock = await locker.acquire('k', { timeoutMs: 0 });
      await lock.release();
    });

    it('ignores an abort that comes after the lock was granted', async () => {
      const controller = new AbortController();
      const lock = await locker.acquire('k', { timeoutMs: LONG_MS, signal: controller.signal });
      controller.abort();
      await assert.rejects(locker.acquire('k', { timeoutMs: 20 }), LockTimeoutError);
      await lock.release();
    });

    it('makes release idempotent: a second release does not free a later holder', async () => {
      const first = await locker.acquire('k', { timeoutMs: LONG_MS });
      await first.release();
      await first.release();
      const second = await locker.acquire('k', { timeoutMs: 0 });
      await first.release();
      await assert.rejects(locker.acquire('k', { timeoutMs: 20 }), LockTimeoutError);
      await second.release();
      await second.release();
    });

    it('keeps keys independent', async () => {
      const a = await locker.acquire('a', { timeoutMs: LONG_MS });
      const b = await locker.acquire('b', { timeoutMs: 0 });
      const waiterA = track(locker.acquire('a', { timeoutMs: LONG_MS }));
      await b.release();
      await sleep(GRACE_MS);
      assert.equal(waiterA.lock, undefined, 'releasing b does not hand out a');
      await a.release();
      await (await waiterA.promise).release();
    });

    it('runs 100 concurrent acquirers on one key strictly one at a time', async () => {
      let inside = 0;
      let maxInside = 0;
      const ran: number[] = [];
      await Promise.all(
        Array.from({ length: 100 }, async (_, n) => {
          const lock = await locker.acquire('hot', { timeoutMs: LONG_MS });
          inside++;
          maxInside = Math.max(maxInside, inside);
          ran.push(n);
          await new Promise((resolve) => setImmediate(resolve));
          inside--;
          await lock.release();
        }),
      );
      assert.equal(maxInside, 1);
      assert.deepEqual(
        [...ran].sort((x, y) => x - y),
        Array.from({ length: 100 }, (_, n) => n),
      );
      const after = await locker.acquire('hot', { timeoutMs: 0 });
      await after.release();
    });
  });
}

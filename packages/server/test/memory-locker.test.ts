import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { UploadError } from '@ferry/protocol';
import { describeLocker } from '@ferry/testing';
import { createMemoryLocker } from '../src/meta/memory-locker.ts';

describeLocker('memory', async () => ({ locker: createMemoryLocker(), cleanup: async () => {} }));

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

describe('memory locker', () => {
  it('leaves no timer behind once a waiter is granted, times out or aborts', async () => {
    const locker = createMemoryLocker();
    const before = activeTimers();
    const holder = await locker.acquire('k', { timeoutMs: 60_000 });
    const granted = locker.acquire('k', { timeoutMs: 60_000 });
    const controller = new AbortController();
    const aborted = locker.acquire('k', { timeoutMs: 60_000, signal: controller.signal });
    assert.equal(activeTimers(), before + 2, 'each waiter has its timer while it waits');
    controller.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);
    await holder.release();
    await (await granted).release();
    const owner = await locker.acquire('k', { timeoutMs: 0 });
    await assert.rejects(locker.acquire('k', { timeoutMs: 1 }));
    await owner.release();
    assert.equal(activeTimers(), before);
    await locker.close();
  });

  it('waits without a timer for an infinite timeout', async () => {
    const locker = createMemoryLocker();
    const before = activeTimers();
    const holder = await locker.acquire('k', { timeoutMs: 60_000 });
    const waiter = locker.acquire('k', { timeoutMs: Number.POSITIVE_INFINITY });
    assert.equal(activeTimers(), before);
    await holder.release();
    await (await waiter).release();
    await locker.close();
  });

  it('lets a holder release synchronously from its release request', async () => {
    const locker = createMemoryLocker();
    let holder: Awaited<ReturnType<typeof locker.acquire>> | undefined;
    holder = await locker.acquire('k', {
      timeoutMs: 1000,
      onReleaseRequested: () => void holder?.release(),
    });
    const next = await locker.acquire('k', { timeoutMs: 0 });
    assert.equal(next.key, 'k');
    await next.release();
    await locker.close();
  });

  it('keeps waiting when the holder release callback throws', async () => {
    const locker = createMemoryLocker();
    const holder = await locker.acquire('k', {
      timeoutMs: 1000,
      onReleaseRequested: () => {
        throw new Error('holder bug');
      },
    });
    const waiter = locker.acquire('k', { timeoutMs: 1000 });
    await sleep(5);
    await holder.release();
    await (await waiter).release();
    await locker.close();
  });

  it('rejects an invalid timeout', async () => {
    const locker = createMemoryLocker();
    await assert.rejects(locker.acquire('k', { timeoutMs: -1 }), TypeError);
    await assert.rejects(locker.acquire('k', { timeoutMs: Number.NaN }), TypeError);
    await locker.close();
  });

  it('on close fails waiters and later acquires with ERR_SHUTTING_DOWN', async () => {
    const locker = createMemoryLocker();
    const before = activeTimers();
    const holder = await locker.acquire('k', { timeoutMs: 1000 });
    const waiter = locker.acquire('k', { timeoutMs: 60_000 });
    await locker.close();
    const shuttingDown = (error: unknown) =>
      error instanceof UploadError && error.code === 'ERR_SHUTTING_DOWN';
    await assert.rejects(waiter, shuttingDown);
    await assert.rejects(locker.acquire('other', { timeoutMs: 0 }), shuttingDown);
    await holder.release();
    assert.equal(activeTimers(), before);
  });
});

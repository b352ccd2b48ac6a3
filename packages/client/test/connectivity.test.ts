/**
 * Pausing while the network is gone, on the platform-free core: a `Connectivity` seam that the test
 * switches (browsers feed it from `online`/`offline`), against a real Ferry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type Connectivity,
  createUploadWith,
  type StateEvent,
  type Upload,
  type UploadOptions,
} from '../src/index.ts';
import { nodePlatform } from '../src/node-api.ts';
import { MiB, sha256, startFerry, type TestServer } from './helpers.ts';

function switchableNetwork(online: boolean) {
  const listeners = new Set<(online: boolean) => void>();
  const connectivity: Connectivity = {
    online: () => online,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    connectivity,
    listeners,
    set(value: boolean) {
      online = value;
      for (const listener of [...listeners]) listener(value);
    },
  };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('uploads and the network going away', { timeout: 60_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startFerry();
  });
  after(() => server?.stop());

  function start(network: ReturnType<typeof switchableNetwork>, bytes: Uint8Array) {
    const options: UploadOptions = {
      endpoint: server.endpoint,
      source: bytes,
      chunkSize: 256 * 1024,
      limitRate: 2 * MiB,
      resumeStore: false,
    };
    const upload: Upload = createUploadWith(
      { ...nodePlatform(), connectivity: network.connectivity },
      options,
    );
    const states: StateEvent[] = [];
    upload.on('state', (event) => states.push(event));
    const result = upload.start();
    return { upload, states, result };
  }

  it('pauses when offline (as pausedOffline), resumes by itself when back online, then stops listening', async () => {
    const network = switchableNetwork(true);
    const bytes = new Uint8Array(3 * MiB).map((_, i) => i % 251);
    const { upload, states, result } = start(network, bytes);
    await until(() => upload.progress.bytesConfirmed > 0, 'progress');
    network.set(false);
    assert.equal(upload.state, 'paused');
    assert.equal(upload.pausedOffline, true);
    assert.deepEqual(states.at(-1), { state: 'paused', previous: 'uploading', offline: true });
    network.set(true);
    assert.equal(upload.pausedOffline, false);
    const done = await result;
    assert.equal(done.sha256, sha256(bytes));
    assert.equal(network.listeners.size, 0, 'unsubscribed once done');
  });

  it('a pause by the user, even while offline, outlasts the network coming back', async () => {
    const network = switchableNetwork(true);
    const bytes = new Uint8Array(2 * MiB).map((_, i) => i % 241);
    const { upload, result } = start(network, bytes);
    await until(() => upload.progress.bytesConfirmed > 0, 'progress');
    network.set(false);
    assert.equal(upload.pausedOffline, true);
    upload.pause();
    assert.equal(upload.pausedOffline, false);
    network.set(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(upload.state, 'paused');
    upload.resume();
    assert.equal((await result).sha256, sha256(bytes));
  });

  it('an upload started offline waits, paused, for the network', async () => {
    const network = switchableNetwork(false);
    const bytes = new Uint8Array(MiB).map((_, i) => i % 239);
    const { upload, result } = start(network, bytes);
    assert.equal(upload.state, 'paused');
    assert.equal(upload.pausedOffline, true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(upload.progress.bytesConfirmed, 0);
    network.set(true);
    assert.equal((await result).sha256, sha256(bytes));
  });

  it('a pause while the source is still opening is not undone by that stale run; resume finishes', async () => {
    const network = switchableNetwork(true);
    const bytes = new Uint8Array(MiB).map((_, i) => i % 233);
    const { upload, result } = start(network, bytes);
    upload.pause();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(upload.state, 'paused', 'the paused run moved no state');
    upload.resume();
    assert.equal((await result).sha256, sha256(bytes));
  });
});

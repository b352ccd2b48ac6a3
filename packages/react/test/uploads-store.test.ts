/**
 * The store behind `useUploads` and `useUpload`, driven through a stand-in SDK upload: snapshots are
 * frozen and keep their identity until something changes (so `useSyncExternalStore` never loops),
 * progress renders are throttled while state changes render at once, `done` comes with its result,
 * and uploads left unfinished before a reload continue or wait for their file.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResumableUpload, ResumeEntry, ResumeStore } from '@ferry/client';
import { createUploadStore } from '../src/upload-store.ts';
import { createUploadsStore, type UploadsOptions } from '../src/uploads-store.ts';
import { type FakeUpload, fakeFactory, settle } from './fake-upload.ts';

const endpoint = 'http://127.0.0.1:1080/files/';

function pdf(name = 'report.pdf', size = 1000): File {
  return new File([new Uint8Array(size)], name, { type: 'application/pdf', lastModified: 1 });
}

function setup(options: Partial<UploadsOptions> = {}) {
  const factory = fakeFactory();
  const store = createUploadsStore({
    endpoint,
    createUpload: factory.createUpload,
    restore: false,
    ...options,
  });
  let renders = 0;
  store.subscribe(() => renders++);
  return { store, made: factory.made, renders: () => renders };
}

describe('uploads store', () => {
  it('getSnapshot returns the same frozen object until something changes', async () => {
    const { store, made } = setup();
    const empty = store.getSnapshot();
    assert.equal(store.getSnapshot(), empty);
    assert.ok(Object.isFrozen(empty) && Object.isFrozen(empty.items) && Object.isFrozen(empty.totals));

    store.add([pdf()]);
    await settle();
    const added = store.getSnapshot();
    assert.notEqual(added, empty);
    assert.equal(store.getSnapshot(), added, 'stable between changes');
    const [item] = added.items;
    assert.ok(item !== undefined && Object.isFrozen(item) && Object.isFrozen(item.progress));
    assert.equal(item.state, 'creating');
    assert.equal(item.name, 'report.pdf');

    // An event that changes nothing visible keeps every object.
    made[0]?.setState('creating');
    await settle();
    assert.equal(store.getSnapshot(), added);
  });

  it('progress renders at most once per interval; state changes render at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { store, made, renders } = setup({ renderIntervalMs: 250 });
    store.add([pdf()]);
    await settle();
    const upload = made[0] as FakeUpload;
    upload.setState('uploading');
    await settle();
    const base = renders();
    const before = store.getSnapshot();
    for (let i = 1; i <= 20; i++)
      upload.setProgress({ bytesConfirmed: i * 10, totalBytes: 1000, fraction: i / 100 });
    await settle();
    assert.equal(renders(), base, 'no render before the interval');
    assert.equal(store.getSnapshot(), before);
    t.mock.timers.tick(250);
    assert.equal(renders(), base + 1, 'one render for twenty progress events');
    const after = store.getSnapshot();
    assert.equal(after.items[0]?.progress.bytesConfirmed, 200);
    assert.equal(after.items[0]?.progress.percent, 20);
    assert.equal(after.totals.percent, 20);

    upload.pause();
    await settle();
    assert.equal(renders(), base + 2, 'a pause renders without waiting');
    assert.equal(store.getSnapshot().items[0]?.state, 'paused');
  });

  it('unchanged items keep their identity when another item changes', async () => {
    const { store, made } = setup();
    store.add([pdf('a.pdf'), pdf('b.pdf')]);
    await settle();
    const [a, b] = store.getSnapshot().items;
    made[1]?.pause();
    await settle();
    const [a2, b2] = store.getSnapshot().items;
    assert.equal(a2, a);
    assert.notEqual(b2, b);
    assert.equal(b2?.state, 'paused');
  });

  it('done is shown only with its result; onComplete gets the item and the result', async () => {
    const completed: [string, string][] = [];
    const { store, made } = setup({ onComplete: (item, result) => completed.push([item.name, result.url]) });
    store.add([pdf()]);
    const upload = made[0] as FakeUpload;
    upload.setState('uploading');
    upload.finish({ url: 'http://127.0.0.1:1080/files/abc' });
    // The SDK's `done` event came first; the result only a microtask later.
    const [item] = store.getSnapshot().items;
    assert.notEqual(item?.state, 'done');
    await settle();
    const [done] = store.getSnapshot().items;
    assert.equal(done?.state, 'done');
    assert.equal(done?.result?.url, 'http://127.0.0.1:1080/files/abc');
    assert.equal(done?.progress.percent, 100);
    assert.deepEqual(completed, [['report.pdf', 'http://127.0.0.1:1080/files/abc']]);
    assert.equal(store.getSnapshot().totals.done, 1);
  });

  it('failed comes with a reason in words; retry starts the same upload again', async () => {
    const errors: string[] = [];
    const { store, made } = setup({ onError: (_item, error) => errors.push(error.code ?? '') });
    store.add([pdf()]);
    const upload = made[0] as FakeUpload;
    upload.fail(Object.assign(new Error('gave up'), { code: 'ERR_RETRY_LIMIT' }));
    await settle();
    const [failed] = store.getSnapshot().items;
    assert.equal(failed?.state, 'failed');
    assert.match(failed?.error?.message ?? '', /connection kept failing/);
    assert.deepEqual(errors, ['ERR_RETRY_LIMIT']);

    store.retry(failed?.id as string);
    await settle();
    assert.equal(upload.starts, 2);
    assert.equal(made.length, 1, 'no new upload');
    const [again] = store.getSnapshot().items;
    assert.equal(again?.state, 'creating');
    assert.equal(again?.error, undefined);
  });

  it('passes the file, its name and type and the SDK options on; keeps its own options back', () => {
    const { store, made } = setup({ protocol: 'parts', headers: { authorization: 'Bearer t' }, maxSize: 10 });
    store.add([pdf('small.pdf', 5)]);
    const { options } = made[0] as FakeUpload;
    assert.equal(options.protocol, 'parts');
    assert.deepEqual(options.headers, { authorization: 'Bearer t' });
    assert.equal(options.name, 'small.pdf');
    assert.equal(options.type, 'application/pdf');
    assert.equal(options.endpoint, endpoint);
    assert.ok(options.source instanceof File);
    for (const own of ['maxSize', 'createUpload', 'restore', 'onComplete'])
      assert.equal(own in options, false, own);
  });

  it('refuses files by the rules, in words, and keeps the refusals until dismissed', async () => {
    const rejected: string[] = [];
    const { store, made } = setup({
      maxSize: 1500,
      accept: '.pdf',
      onRejected: (list) => rejected.push(...list.map((r) => r.reason)),
    });
    const checked = store.add([pdf('big.pdf', 2000), new File(['x'], 'x.exe'), pdf('ok.pdf', 10)]);
    await settle();
    assert.equal(checked.accepted.length, 1);
    assert.equal(made.length, 1);
    assert.deepEqual(rejected, ['size', 'type']);
    assert.deepEqual(
      store.getSnapshot().rejections.map((r) => r.message),
      [
        'big.pdf is 2 kB; the limit is 1.5 kB.',
        "x.exe can't be uploaded here: only .pdf files are accepted.",
      ],
    );
    store.dismissRejections();
    await settle();
    assert.deepEqual(store.getSnapshot().rejections, []);
  });

  it('autoStart: false adds without starting; start() starts', async () => {
    const { store, made } = setup({ autoStart: false });
    store.add([pdf()]);
    await settle();
    assert.equal(store.getSnapshot().items[0]?.state, 'idle');
    assert.equal(store.getSnapshot().totals.queued, 1);
    store.start(store.getSnapshot().items[0]?.id as string);
    await settle();
    assert.equal(made[0]?.starts, 1);
    assert.equal(store.getSnapshot().items[0]?.state, 'creating');
  });

  it('cancel keeps the item, cancelled; remove cancels an unfinished upload and stops listening', async () => {
    const { store, made } = setup();
    store.add([pdf('a.pdf'), pdf('b.pdf')]);
    await settle();
    const [a, b] = store.getSnapshot().items;
    await store.cancel(a?.id as string);
    await settle();
    assert.equal(store.getSnapshot().items[0]?.state, 'cancelled');
    assert.equal(store.getSnapshot().totals.files, 1, 'a cancelled file does not count');

    await store.remove(b?.id as string);
    await settle();
    assert.equal(made[1]?.cancelled, true);
    assert.equal(made[1]?.listenerCount(), 0);
    assert.deepEqual(
      store.getSnapshot().items.map((item) => item.name),
      ['a.pdf'],
    );
  });

  it('aggregates progress over the files', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { store, made } = setup();
    store.add([pdf('a.pdf', 1000), pdf('b.pdf', 3000)]);
    made[0]?.setState('uploading');
    made[0]?.setProgress({ bytesConfirmed: 500, totalBytes: 1000, fraction: 0.5, bytesPerSecond: 100 });
    made[1]?.setState('uploading');
    made[1]?.setProgress({ bytesConfirmed: 1500, totalBytes: 3000, fraction: 0.5, bytesPerSecond: 300 });
    await settle();
    t.mock.timers.tick(250);
    const { totals } = store.getSnapshot();
    assert.equal(totals.files, 2);
    assert.equal(totals.active, 2);
    assert.equal(totals.bytesConfirmed, 2000);
    assert.equal(totals.totalBytes, 4000);
    assert.equal(totals.percent, 50);
    assert.equal(totals.bytesPerSecond, 400);
    assert.equal(totals.etaSeconds, 5);
  });

  it('leaves the bytes of failed files out of the totals', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { store, made } = setup();
    store.add([pdf('a.pdf', 1000), pdf('b.pdf', 3000)]);
    made[0]?.setState('uploading');
    made[0]?.setProgress({ bytesConfirmed: 1000, totalBytes: 1000, fraction: 1 });
    made[0]?.finish();
    made[1]?.setState('uploading');
    made[1]?.setProgress({ bytesConfirmed: 1500, totalBytes: 3000, fraction: 0.5 });
    made[1]?.fail(Object.assign(new Error('gave up'), { code: 'ERR_RETRY_LIMIT' }));
    await settle();
    t.mock.timers.tick(250);
    const { totals } = store.getSnapshot();
    assert.equal(totals.files, 2);
    assert.equal(totals.done, 1);
    assert.equal(totals.failed, 1);
    assert.equal(totals.totalBytes, 1000, 'the failed file is not in the bytes');
    assert.equal(totals.bytesConfirmed, 1000);
    assert.equal(totals.percent, 100);
  });

  it('a change of state shows the progress of that moment, not the last throttled event', async () => {
    const { store, made } = setup();
    store.add([pdf('small.pdf', 1000)]);
    const upload = made[0] as FakeUpload;
    upload.setState('uploading');
    await settle();
    assert.equal(store.getSnapshot().items[0]?.progress.percent, 0);
    // Every byte confirmed, but the SDK's next progress event is still throttled.
    upload.progress = { ...upload.progress, bytesConfirmed: 1000, totalBytes: 1000, fraction: 1 };
    upload.setState('completing');
    await settle();
    const [item] = store.getSnapshot().items;
    assert.equal(item?.state, 'completing');
    assert.equal(item?.progress.percent, 100, 'not "Finishing 0%"');
  });
});

describe('after a reload', () => {
  function entry(
    name: string,
    size: number,
    uploadUrl: string,
    protocol: 'tus' | 'parts' = 'tus',
  ): ResumeEntry {
    return {
      protocol,
      endpoint,
      uploadUrl,
      size,
      name,
      sha256: 'cd'.repeat(32),
      createdAt: '2025-01-01T00:00:00Z',
    };
  }

  function memoryStore(): ResumeStore & { removed: string[] } {
    const removed: string[] = [];
    return {
      removed,
      get: async () => undefined,
      set: async () => {},
      remove: async (key) => {
        removed.push(key);
      },
      list: async () => [],
    };
  }

  it('continues kept files by themselves and lists the others as needs-file; other endpoints are left alone', async () => {
    const kept = new File([new Uint8Array(10)], 'kept.bin');
    const found: ResumableUpload[] = [
      { key: 'k1', entry: entry('kept.bin', 10, `${endpoint}one`), file: kept },
      { key: 'k2', entry: entry('big.mov', 5_000_000_000, `${endpoint}two`), file: undefined },
      { key: 'k3', entry: entry('other.bin', 1, `${endpoint}three`, 'parts'), file: undefined },
      {
        key: 'k4',
        entry: { ...entry('elsewhere.bin', 1, 'http://other/files/x'), endpoint: 'http://other/files/' },
        file: undefined,
      },
    ];
    let list!: (uploads: ResumableUpload[]) => void;
    const listed = new Promise<ResumableUpload[]>((resolve) => {
      list = resolve;
    });
    const { store, made } = setup({ restore: true, findResumableUploads: () => listed });
    const restoring = store.restore();
    assert.equal(store.restore(), restoring, 'once');
    await settle();
    assert.equal(store.getSnapshot().restoring, true);
    list(found);
    await restoring;
    await settle();
    const { items, totals, restoring: still } = store.getSnapshot();
    assert.equal(still, false);
    assert.deepEqual(
      items.map((item) => [item.name, item.state, item.restored]),
      [
        ['kept.bin', 'creating', true],
        ['big.mov', 'needs-file', true],
      ],
    );
    assert.equal(made.length, 1);
    assert.equal(made[0]?.options.source, kept);
    assert.equal(made[0]?.options.name, 'kept.bin');
    assert.equal(totals.needsFile, 1);
    assert.equal(totals.files, 1);
  });

  it('the same file picked again takes the waiting item’s place once the SDK finds its upload', async () => {
    const waitingUrl = `${endpoint}two`;
    const { store, made } = setup({
      restore: true,
      findResumableUploads: async () => [
        { key: 'k2', entry: entry('big.mov', 100, waitingUrl), file: undefined },
        { key: 'k5', entry: entry('later.mov', 100, `${endpoint}five`), file: undefined },
      ],
    });
    await store.restore();
    store.add([new File([new Uint8Array(100)], 'big.mov')]);
    await settle();
    assert.equal(store.getSnapshot().items.length, 3, 'both shown while the file is being recognised');

    made[0]?.emit('resumed', { url: waitingUrl });
    await settle();
    const { items } = store.getSnapshot();
    assert.deepEqual(
      items.map((item) => [item.name, item.state, item.restored, item.uploadUrl]),
      [
        ['big.mov', 'creating', true, waitingUrl],
        ['later.mov', 'needs-file', true, `${endpoint}five`],
      ],
    );
  });

  it('removing a waiting item forgets it in the resume store', async () => {
    const resumeStore = memoryStore();
    const { store } = setup({
      restore: true,
      resumeStore,
      findResumableUploads: async () => [
        { key: 'k2', entry: entry('big.mov', 100, `${endpoint}two`), file: undefined },
      ],
    });
    await store.restore();
    await settle();
    await store.remove(store.getSnapshot().items[0]?.id as string);
    assert.deepEqual(resumeStore.removed, ['k2']);
    await settle();
    assert.deepEqual(store.getSnapshot().items, []);
  });

  it('an unreadable resume store restores nothing and says it is done looking', async () => {
    const { store } = setup({
      restore: true,
      findResumableUploads: async () => {
        throw new Error('IndexedDB is blocked');
      },
    });
    await store.restore();
    await settle();
    assert.equal(store.getSnapshot().restoring, false);
    assert.deepEqual(store.getSnapshot().items, []);
  });

  it('restore: false and resumeStore: false look for nothing', async () => {
    let asked = 0;
    const findResumableUploads = async () => {
      asked++;
      return [];
    };
    await setup({ restore: false, findResumableUploads }).store.restore();
    await setup({ restore: true, resumeStore: false, findResumableUploads }).store.restore();
    assert.equal(asked, 0);
  });
});

describe('single upload store', () => {
  it('starts a file, exposes its snapshot without an id, and refuses a second file while busy', async () => {
    const factory = fakeFactory();
    const store = createUploadStore({ endpoint, createUpload: factory.createUpload });
    const idle = store.getSnapshot();
    assert.equal(idle.state, 'idle');
    assert.equal(store.getSnapshot(), idle);
    assert.throws(() => store.start(), /needs a file/);

    store.start(pdf());
    await settle();
    const started = store.getSnapshot();
    assert.equal(started.state, 'creating');
    assert.equal(started.name, 'report.pdf');
    assert.equal('id' in started, false);
    assert.ok(Object.isFrozen(started));
    assert.equal(store.getSnapshot(), started);
    assert.throws(() => store.start(pdf('other.pdf')), /still uploading/);

    store.pause();
    await settle();
    assert.equal(store.getSnapshot().state, 'paused');
    store.resume();
    await settle();
    assert.equal(store.getSnapshot().state, 'uploading');
    factory.made[0]?.finish();
    await settle();
    assert.equal(store.getSnapshot().state, 'done');
    assert.ok(store.getSnapshot().result !== undefined);

    store.start(pdf('next.pdf'));
    await settle();
    assert.equal(store.getSnapshot().name, 'next.pdf');
    assert.equal(factory.made.length, 2);
    assert.equal(factory.made[0]?.listenerCount(), 0, 'the finished upload is no longer watched');
  });

  it('start() without a file retries a failed upload', async () => {
    const factory = fakeFactory();
    const failures: string[] = [];
    const store = createUploadStore({
      endpoint,
      createUpload: factory.createUpload,
      source: pdf(),
      onError: (error) => failures.push(error.message),
    });
    store.start();
    factory.made[0]?.fail(Object.assign(new Error('x'), { code: 'ERR_NETWORK' }));
    await settle();
    assert.equal(store.getSnapshot().state, 'failed');
    assert.equal(failures.length, 1);
    store.start();
    await settle();
    assert.equal(factory.made.length, 1);
    assert.equal(factory.made[0]?.starts, 2);
    assert.equal(store.getSnapshot().state, 'creating');
  });
});

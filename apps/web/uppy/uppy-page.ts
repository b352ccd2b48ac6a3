/**
 * The Uppy interoperability page: Uppy's Dashboard with @uppy/tus, sending to a Ferry server on
 * another origin (so every request is a CORS request). Not part of the web app's build: `serve.ts`
 * bundles it on its own, and Ferry never serves it.
 *
 * The Ferry tus endpoint comes from the page's `endpoint` query parameter. What Uppy reports is kept
 * on `window.uppyEvents` for tests.
 */
import Uppy from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import Tus from '@uppy/tus';

export type UppyPageEvent =
  | { type: 'success'; name: string; size: number; url: string }
  | { type: 'error'; name: string; message: string }
  | { type: 'complete'; successful: number; failed: number };

const endpoint = new URLSearchParams(location.search).get('endpoint') ?? 'http://127.0.0.1:1080/files/';
const events: UppyPageEvent[] = [];
Object.assign(globalThis, { uppyEvents: events });

const target = document.getElementById('uppy');
const where = document.getElementById('endpoint');
if (where !== null) where.textContent = endpoint;

const uppy = new Uppy({ autoProceed: false })
  .use(Dashboard, {
    inline: true,
    target: target ?? 'body',
    height: 420,
    width: '100%',
    proudlyDisplayPoweredByUppy: false,
  })
  .use(Tus, { endpoint, retryDelays: [0, 1000, 3000, 5000] });

uppy.on('upload-success', (file, response) => {
  events.push({
    type: 'success',
    name: file?.name ?? '',
    size: file?.size ?? 0,
    url: response.uploadURL ?? '',
  });
});
uppy.on('upload-error', (file, error) => {
  events.push({ type: 'error', name: file?.name ?? '', message: error.message });
});
uppy.on('complete', (result) => {
  events.push({
    type: 'complete',
    successful: result.successful?.length ?? 0,
    failed: result.failed?.length ?? 0,
  });
});

/**
 * The Uppy S3 interoperability page: `@uppy/aws-s3` unchanged, signing through Ferry's Companion-style
 * routes (`companionEndpoint` = the Ferry origin), the bytes going straight from the browser to
 * the bucket. Files come from `#file`; what Uppy reports is kept on `window.uppyEvents` for tests.
 *
 * The Ferry origin comes from the page's `ferry` query parameter.
 */
import AwsS3 from '@uppy/aws-s3';
import Uppy from '@uppy/core';

export type UppyS3PageEvent =
  | { type: 'success'; name: string; size: number; location: string; key: string }
  | { type: 'error'; name: string; message: string }
  | { type: 'part'; partNumber: number }
  | { type: 'complete'; successful: number; failed: number };

const ferry = new URLSearchParams(location.search).get('ferry') ?? 'http://127.0.0.1:1080';
const events: UppyS3PageEvent[] = [];
Object.assign(globalThis, { uppyEvents: events });

// Ferry records and verifies multipart uploads only (a presigned POST never reports back).
const uppy = new Uppy({ autoProceed: true }).use(AwsS3, {
  companionEndpoint: ferry,
  shouldUseMultipart: true,
});

uppy.on('s3-multipart:part-uploaded', (_file, part) => {
  events.push({ type: 'part', partNumber: part.PartNumber });
});
uppy.on('upload-success', (file, response) => {
  const body = (response.body ?? {}) as { location?: string; key?: string };
  events.push({
    type: 'success',
    name: file?.name ?? '',
    size: file?.size ?? 0,
    location: body.location ?? response.uploadURL ?? '',
    key: body.key ?? '',
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

document.getElementById('file')?.addEventListener('change', (event) => {
  for (const file of (event.target as HTMLInputElement).files ?? []) {
    uppy.addFile({ name: file.name, type: file.type, data: file, source: 'Local' });
  }
});

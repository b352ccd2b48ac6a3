/**
 * `@ferry/react`: headless hooks over the Ferry client SDK (`useUpload`, `useUploads`, and their
 * stores for use outside React) and `<UploadDropzone>`, an accessible drop area with a card per
 * file. See docs/react.md.
 */
export { announcements, describeChange, PROGRESS_STEP, progressStep } from './announce.ts';
export { describeFailure, type UploadFailure } from './failure.ts';
export { formatBytes, formatDuration, formatRate } from './format.ts';
export type {
  PartsCount,
  ProgressSnapshot,
  UploadItem,
  UploadItemState,
  UploadSnapshot,
} from './snapshot.ts';
export { dropzoneStyles } from './styles.ts';
export type { UploadTotals } from './totals.ts';
export { UploadDropzone, type UploadDropzoneProps } from './upload-dropzone.tsx';
export { createUploadStore, type SingleUploadOptions, type UploadStore } from './upload-store.ts';
export {
  createUploadsStore,
  type UploadsOptions,
  type UploadsSnapshot,
  type UploadsStore,
} from './uploads-store.ts';
export { type UploadView, useUpload } from './use-upload.ts';
export { type UploadsView, useUploads } from './use-uploads.ts';
export {
  type Checked,
  checkFiles,
  describeRules,
  type FileFacts,
  type FileRules,
  isAccepted,
  type Rejection,
  type RejectionReason,
} from './validate.ts';

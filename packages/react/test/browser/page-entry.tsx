/**
 * The test page, in React's StrictMode, configured by the `config` query parameter (JSON): one
 * `<UploadDropzone>` recording what its callbacks report on `window.dropzoneEvents`, or (`view:
 * 'useUpload'`) a small form built on `useUpload` that counts its commits on `window.singleCommits`.
 */
import { StrictMode, useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { UploadDropzone, type UploadDropzoneProps, useUpload } from '../../src/index.ts';

export type PageConfig = Omit<
  UploadDropzoneProps,
  'onFileAdded' | 'onComplete' | 'onError' | 'onRejected' | 'createUpload' | 'findResumableUploads'
> & { view?: 'useUpload' };

export type DropzoneEvent =
  | { type: 'added'; name: string }
  | { type: 'complete'; name: string; url: string; sha256: string | undefined; size: number }
  | { type: 'error'; name: string; code: string | undefined; message: string }
  | { type: 'rejected'; messages: string[] };

const { view, ...config } = JSON.parse(
  new URLSearchParams(location.search).get('config') ?? '{}',
) as PageConfig;
const events: DropzoneEvent[] = [];
const commits = { count: 0 };
Object.assign(globalThis, { dropzoneEvents: events, singleCommits: commits });

function SingleUpload() {
  const upload = useUpload({
    ...config,
    onComplete: (result) =>
      events.push({
        type: 'complete',
        name: upload.name,
        url: result.url,
        sha256: result.sha256,
        size: result.size,
      }),
  });
  useEffect(() => {
    commits.count++;
  });
  return (
    <main>
      <h1>Send one file</h1>
      <label>
        File{' '}
        <input
          type="file"
          onChange={(event) => {
            const file = event.currentTarget.files?.[0];
            if (file !== undefined) upload.start(file);
          }}
        />
      </label>
      <p id="single-state">{upload.state}</p>
      <progress max={100} value={upload.progress.percent ?? 0} aria-label={`Uploading ${upload.name}`} />
      <p id="single-bytes">
        {upload.progress.bytesConfirmed} of {upload.progress.totalBytes ?? '?'}
      </p>
      <button type="button" onClick={upload.pause}>
        Pause
      </button>
      <button type="button" onClick={upload.resume}>
        Resume
      </button>
    </main>
  );
}

function App() {
  if (view === 'useUpload') return <SingleUpload />;
  return (
    <main>
      <h1>Send files</h1>
      <UploadDropzone
        {...config}
        onFileAdded={(item) => events.push({ type: 'added', name: item.name })}
        onComplete={(item, result) =>
          events.push({
            type: 'complete',
            name: item.name,
            url: result.url,
            sha256: result.sha256,
            size: result.size,
          })
        }
        onError={(item, error) =>
          events.push({ type: 'error', name: item.name, code: error.code, message: error.message })
        }
        onRejected={(rejections) =>
          events.push({ type: 'rejected', messages: rejections.map((rejection) => rejection.message) })
        }
      />
    </main>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

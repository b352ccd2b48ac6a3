/**
 * "Finished files": what this browser uploaded, with download links (`/files/:id`, and `?token=`
 * when the page has an upload token), kept across reloads in localStorage. The links carry
 * `download`, so following one saves the file instead of leaving the page while other files are
 * still uploading.
 */
import { formatBytes } from '@ferry/react';
import { type ReactNode, useRef } from 'react';
import { useAccess, withToken } from './access.ts';
import { finishedFiles, useFinishedFiles } from './finished-files.ts';
import { PROTOCOL_NAMES } from './protocol.ts';

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function when(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : timeFormat.format(date);
}

export function FinishedList(): ReactNode {
  const files = useFinishedFiles();
  const { token } = useAccess();
  const heading = useRef<HTMLHeadingElement>(null);
  return (
    <section className="panel finished" aria-labelledby="finished-heading">
      <div className="panel__head">
        <h2 id="finished-heading" ref={heading} tabIndex={-1}>
          Finished files
        </h2>
        {files.length > 0 && (
          <p className="panel__count">{files.length === 1 ? '1 file' : `${files.length} files`}</p>
        )}
      </div>
      {files.length === 0 ? (
        <p className="empty">
          Files you upload from this browser are listed here, with a link to download each.
        </p>
      ) : (
        <>
          <ul className="files">
            {files.map((file) => (
              <li key={file.id} className="file">
                <a href={withToken(file.href, token)} download={file.name} className="file__name">
                  {file.name}
                </a>
                <span className="file__meta">
                  <span>{formatBytes(file.size)}</span>
                  <span>{PROTOCOL_NAMES[file.protocol]}</span>
                  <time dateTime={file.finishedAt}>{when(file.finishedAt)}</time>
                </span>
                {file.sha256 !== null && (
                  <span className="file__digest">
                    SHA-256 <code>{file.sha256}</code>
                  </span>
                )}
              </li>
            ))}
          </ul>
          <button
            type="button"
            className="button"
            onClick={() => {
              finishedFiles.clear();
              // The button goes away with the list: focus stays in this section.
              heading.current?.focus();
            }}
          >
            Clear this list<span className="vh"> of finished files</span>
          </button>
          <p className="hint">Clearing the list keeps the files on the server.</p>
        </>
      )}
    </section>
  );
}

/**
 * "On the server now": every upload in progress on this server, whichever client sends it (this
 * page, another browser, `ferry upload`, Uppy, tus-js-client), kept live by the uploads feed, and
 * the files that finished while the page was open.
 *
 * Nothing here is a live region: the feed can move several times a second, and the drop area
 * already announces this page's own uploads. The connection's state is plain text.
 */
import { formatBytes, formatRate } from '@ferry/react';
import { type ReactNode, useEffect, useState } from 'react';
import { useAccess, withToken } from './access.ts';
import { type FeedConnection, rateAt, type ServerUpload, useServerFeed } from './server-feed.ts';

/**
 * Without new bytes for this long, an upload reads as idle (paused, or its client went away). The
 * parts API counts a part once it is stored whole, so a part in flight on a slow link is silent
 * for a while: its uploads get longer.
 */
const IDLE_AFTER_MS: Readonly<Record<'tus' | 'parts', number>> = { tus: 5000, parts: 30_000 };

const CONNECTION_WORDS: Record<FeedConnection, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  refused: 'No access',
};

/** Re-renders every second while `active`, so "idle" shows without a new event. */
function useClock(active: boolean): number {
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(performance.now()), 1000);
    return () => clearInterval(timer);
  }, [active]);
  return now;
}

function percentOf(received: number, size: number | null): number | undefined {
  if (size === null) return undefined;
  if (size === 0 || received >= size) return 100;
  return Math.min(99, Math.floor((received / size) * 100));
}

function ServerUploadItem({ upload, now }: { upload: ServerUpload; now: number }): ReactNode {
  const { summary } = upload;
  const name = summary.name ?? 'Unnamed upload';
  const percent = percentOf(summary.receivedBytes, summary.size);
  const amount =
    summary.size === null
      ? `${formatBytes(summary.receivedBytes)} received`
      : `${formatBytes(summary.receivedBytes)} of ${formatBytes(summary.size)}`;
  const at = Math.max(now, performance.now());
  const idle = at - upload.movedAt > IDLE_AFTER_MS[summary.protocol];
  const rate = rateAt(upload, at);
  return (
    <li className="server-upload" data-idle={idle ? '' : undefined}>
      <div className="server-upload__head">
        <span className="server-upload__name">{name}</span>
        <span className="tag">{summary.protocol === 'parts' ? 'Parts' : 'tus'}</span>
      </div>
      {percent !== undefined && (
        <progress
          className="server-upload__bar"
          max={100}
          value={percent}
          aria-label={`${name} on the server`}
          aria-valuetext={`${percent}%, ${amount}`}
        />
      )}
      <p className="server-upload__meta">
        {percent !== undefined && <span>{percent}%</span>}
        <span>{amount}</span>
        {summary.partCount !== null && (
          <span>
            Parts {summary.partsReceived ?? 0} of {summary.partCount}
          </span>
        )}
        {idle ? <span>Idle</span> : rate > 0 && <span>{formatRate(rate)}</span>}
      </p>
      {upload.error !== undefined && <p className="server-upload__error">{upload.error}</p>}
    </li>
  );
}

export function ServerPanel(): ReactNode {
  const feed = useServerFeed();
  const { token } = useAccess();
  const now = useClock(feed.uploads.length > 0);
  const count = feed.uploads.length;
  return (
    <section className="panel server" aria-labelledby="server-heading">
      <div className="panel__head">
        <h2 id="server-heading">On the server now</h2>
        <p className="connection" data-connection={feed.connection}>
          <span className="connection__dot" aria-hidden="true" />
          {CONNECTION_WORDS[feed.connection]}
        </p>
      </div>
      <p className="panel__lead">
        Uploads in progress on this server from any client: this page, other browsers, the command line, any
        tus client.
      </p>
      {count === 0 ? (
        <p className="empty">
          {feed.connection === 'live'
            ? 'No upload in progress.'
            : feed.connection === 'refused'
              ? 'Shown once this page has a valid upload link.'
              : 'Not known yet.'}
        </p>
      ) : (
        <>
          <p className="server__count">
            {count === 1 ? '1 upload in progress' : `${count} uploads in progress`}
            {feed.truncated && ' (the newest are shown)'}
          </p>
          <ul className="server__list" aria-label="Uploads in progress on the server">
            {feed.uploads.map((upload) => (
              <ServerUploadItem key={upload.summary.id} upload={upload} now={now} />
            ))}
          </ul>
        </>
      )}
      {feed.finished.length > 0 && (
        <>
          <h3>Finished since this page opened</h3>
          <ul className="files">
            {feed.finished.map((file) => (
              <li key={file.id} className="file">
                <a href={withToken(file.href, token)} download={file.name} className="file__name">
                  {file.name}
                </a>
                <span className="file__meta">{formatBytes(file.size)}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

/**
 * The page `ferry serve` shows at `/`: send files (a protocol choice and `<UploadDropzone>`), the
 * files this browser finished with their download links, and the uploads in progress on the
 * server, live.
 */
import type { Protocol, UploadResult } from '@ferry/client';
import { UploadDropzone, type UploadFailure, type UploadItem } from '@ferry/react';
import { type ReactNode, useState } from 'react';
import { type AccessState, pageAccess, useAccess } from './access.ts';
import { finishedFiles } from './finished-files.ts';
import { FinishedList } from './finished-list.tsx';
import { useLeftoverProtocols } from './leftovers.ts';
import { ENDPOINTS, PROTOCOL_NAMES, savedProtocol, saveProtocol } from './protocol.ts';
import { ProtocolChoice } from './protocol-choice.tsx';
import { ServerPanel } from './server-panel.tsx';

/**
 * The largest tus chunk (the SDK allows 64 MiB). A chunk is a slice of the picked file that the
 * browser reads as it sends it, and its checksum is computed in a worker; a smaller chunk loses
 * less when a connection breaks. Parts are the server's size (8 MiB) either way.
 */
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

const HINTS: Record<Protocol, string> = {
  parts: 'Any type, any size. Sent in parallel parts.',
  tus: 'Any type, any size. Sent with tus.',
};

function recordFinished(item: UploadItem, result: UploadResult): void {
  pageAccess.accepted(pageAccess.token());
  finishedFiles.add(item.name, result.protocol, result);
}

/** An upload refused for its token tells the page, which then says so once, above everything. */
function noteFailure(_item: UploadItem, failure: UploadFailure): void {
  if (failure.code !== 'ERR_UNAUTHORIZED') return;
  const serverCode = (failure.error as { serverCode?: unknown } | null)?.serverCode;
  pageAccess.refused(pageAccess.token(), typeof serverCode === 'string' ? serverCode : undefined);
}

/** The SDK asks this for the token (again when the server says it expired): the page's current one. */
const currentToken = (): string => pageAccess.token() ?? '';

const ACCESS_WORDS: Partial<Record<AccessState, { title: string; text: string }>> = {
  needed: {
    title: 'This server needs an upload link',
    text: 'Files can only be sent here through the link you were given. Open that link to send files.',
  },
  expired: {
    title: 'Your upload link has expired — ask for a new one',
    text: 'Open the new link and press Retry: stopped uploads continue where they were.',
  },
  refused: {
    title: 'This upload link does not work here — ask for a new one',
    text: 'The server did not accept it. Open the new link and press Retry to continue.',
  },
};

function AccessNotice(): ReactNode {
  const { state } = useAccess();
  const words = ACCESS_WORDS[state];
  if (words === undefined) return null;
  return (
    <div className="notice" role="alert" data-access={state}>
      <p className="notice__title">{words.title}</p>
      <p>{words.text}</p>
    </div>
  );
}

function Logo(): ReactNode {
  return (
    <svg className="brand__logo" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
      <rect width="32" height="32" rx="7" fill="currentColor" />
      <path
        d="M16 22V9m0 0-5 5m5-5 5 5M8 23h16"
        fill="none"
        stroke="var(--logo-fg)"
        strokeWidth="2.5"
        strokeLinecap="round"
        strokeLinejoin="round"
      />
    </svg>
  );
}

function SendPanel(): ReactNode {
  const [protocol, setProtocol] = useState<Protocol>(savedProtocol);
  const [protocolAtLoad] = useState(protocol);
  const leftovers = useLeftoverProtocols(protocolAtLoad);
  // Without a token (a server in open mode) no Authorization header is sent at all.
  const token = useAccess().token === undefined ? undefined : currentToken;
  return (
    <section className="panel send" aria-labelledby="send-heading">
      <h1 id="send-heading">Send files</h1>
      <p className="panel__lead">
        Uploads continue where they stopped after a lost connection, a reload or a browser restart, and the
        server checks each file's SHA-256 before it is kept.
      </p>
      <ProtocolChoice
        value={protocol}
        onChange={(next) => {
          setProtocol(next);
          saveProtocol(next);
        }}
      />
      <UploadDropzone
        className="send__dropzone"
        endpoint={ENDPOINTS[protocol]}
        protocol={protocol}
        maxChunkSize={MAX_CHUNK_BYTES}
        hint={HINTS[protocol]}
        token={token}
        onComplete={recordFinished}
        onError={noteFailure}
      />
      <p className="hint">
        Files up to 64 MB are kept in this browser until they finish, so they continue by themselves after a
        reload. A larger file continues once you choose it again.
      </p>
      {leftovers.map((other) => (
        <div key={other} className="send__other">
          <h2>Unfinished {PROTOCOL_NAMES[other]} uploads</h2>
          <p className="hint">
            These were started with {PROTOCOL_NAMES[other]} before the page was reloaded.
          </p>
          <UploadDropzone
            className="send__dropzone"
            endpoint={ENDPOINTS[other]}
            protocol={other}
            maxChunkSize={MAX_CHUNK_BYTES}
            label={`Choose files to send with ${PROTOCOL_NAMES[other]}`}
            hint={HINTS[other]}
            token={token}
            onComplete={recordFinished}
            onError={noteFailure}
          />
        </div>
      ))}
    </section>
  );
}

export function App(): ReactNode {
  return (
    <>
      <header className="top">
        <p className="brand">
          <Logo />
          Ferry
        </p>
        <p className="top__tagline">Resumable, parallel, verifiable file uploads</p>
      </header>
      <main className="layout">
        <AccessNotice />
        <div className="layout__main">
          <SendPanel />
          <FinishedList />
        </div>
        <div className="layout__side">
          <ServerPanel />
        </div>
      </main>
      <footer className="foot">
        <p>
          This server speaks tus at <code>/files/</code> and the parts API at <code>/uploads/</code>; finished
          files download from <code>/files/:id</code>, and <code>/uploads/events</code> streams the uploads in
          progress.
        </p>
      </footer>
    </>
  );
}

/**
 * `<UploadDropzone>`: a drop area that is a real button (Enter and Space open the file chooser;
 * files dropped on it are added), a card per file with a labelled progress bar and real buttons,
 * and one polite live region that tells screen-reader users what happened — files added, paused,
 * resumed, failed and finished, and progress by quarters. Built on `useUploads`; every rule and
 * callback is the hook's.
 */
import { type DragEvent, memo, type ReactNode, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { announcements } from './announce.ts';
import { amountText, partsText, progressValueText, rateText, stateLabel, summaryParts } from './card-text.ts';
import { formatBytes } from './format.ts';
import type { UploadItem } from './snapshot.ts';
import { dropzoneStyles } from './styles.ts';
import type { UploadsOptions, UploadsStore } from './uploads-store.ts';
import { useUploads } from './use-uploads.ts';
import { describeRules, type Rejection } from './validate.ts';

export interface UploadDropzoneProps extends UploadsOptions {
  /** The drop area's text. Default "Choose files or drop them here". */
  label?: string;
  /**
   * The line under it. Default: the rules in words ("Images and .pdf files; up to 2 GB each.").
   * Label and hint are the button's accessible name, so what is seen is what is heard.
   */
  hint?: string;
  /** Added to the root element's class. */
  className?: string;
  /** Render no stylesheet: the app styles the `ferry-*` classes (e.g. with `dropzoneStyles`). */
  unstyled?: boolean;
}

/** `useLayoutEffect` in the browser, nothing on a server (where it would warn). */
const useBrowserLayoutEffect = typeof document === 'undefined' ? () => {} : useLayoutEffect;

function useAnnouncer(items: readonly UploadItem[], rejections: readonly Rejection[]): string {
  const [message, setMessage] = useState('');
  const seen = useRef<{ items: readonly UploadItem[]; rejections: readonly Rejection[] }>({
    items: [],
    rejections: [],
  });
  useEffect(() => {
    const lines = announcements(seen.current.items, items);
    if (rejections !== seen.current.rejections)
      lines.push(...rejections.map((rejection) => rejection.message));
    seen.current = { items, rejections };
    if (lines.length === 0) return;
    const text = lines.join(' ');
    // The same sentence twice in a row is a change too (a no-break space tells them apart).
    setMessage((previous) => (previous === text ? `${text}\u00a0` : text));
  }, [items, rejections]);
  return message;
}

function UploadIcon(): ReactNode {
  return (
    <svg className="ferry-dropzone__icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path
        fill="none"
        stroke="currentColor"
        strokeWidth="1.75"
        strokeLinecap="round"
        strokeLinejoin="round"
        d="M12 15V4m0 0L7.5 8.5M12 4l4.5 4.5M4 14v4a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-4"
      />
    </svg>
  );
}

interface CardActions {
  store: UploadsStore;
  /** Opens the file chooser (to pick a `needs-file` upload's file again). */
  choose(): void;
  /** The item left the list: focus goes back to the drop area. */
  removed(): void;
}

/** A button whose accessible name adds the file's name to its visible word ("Pause report.pdf"). */
function ActionButton(props: { word: string; name: string; primary?: boolean; onClick(): void }): ReactNode {
  return (
    <button
      type="button"
      className={props.primary ? 'ferry-button ferry-button--primary' : 'ferry-button'}
      onClick={props.onClick}
    >
      {props.word}
      <span className="ferry-vh"> {props.name}</span>
    </button>
  );
}

function primaryAction(item: UploadItem, actions: CardActions): ReactNode {
  const { store } = actions;
  const { id, name } = item;
  switch (item.state) {
    case 'idle':
      return <ActionButton key="primary" word="Start" name={name} primary onClick={() => store.start(id)} />;
    case 'creating':
    case 'uploading':
    case 'completing':
      return <ActionButton key="primary" word="Pause" name={name} onClick={() => store.pause(id)} />;
    case 'paused':
      return (
        <ActionButton key="primary" word="Resume" name={name} primary onClick={() => store.resume(id)} />
      );
    case 'failed':
      if (item.error?.retryable === false) return null;
      return <ActionButton key="primary" word="Retry" name={name} primary onClick={() => store.retry(id)} />;
    case 'needs-file':
      return <ActionButton key="primary" word="Choose again" name={name} primary onClick={actions.choose} />;
    default:
      return null;
  }
}

function secondaryAction(item: UploadItem, actions: CardActions): ReactNode {
  const { store } = actions;
  const { id, name, state } = item;
  const live = state === 'idle' || state === 'creating' || state === 'uploading';
  if (live || state === 'completing' || state === 'paused') {
    return (
      <ActionButton
        key="secondary"
        word="Cancel"
        name={name}
        onClick={() => void store.cancel(id).catch(() => {})}
      />
    );
  }
  return (
    <ActionButton
      key="secondary"
      word="Remove"
      name={name}
      onClick={() => {
        void store.remove(id).catch(() => {});
        actions.removed();
      }}
    />
  );
}

/** Renders again only when its item changed (items keep their identity otherwise). */
const UploadCard = memo(function UploadCard({
  item,
  actions,
}: {
  item: UploadItem;
  actions: CardActions;
}): ReactNode {
  const ref = useRef<HTMLLIElement>(null);
  // Whether focus was in this card before this update: a button it held may be about to go (Pause
  // once the file is done), and focus must then stay in the card rather than fall to the page.
  const hadFocus =
    typeof document !== 'undefined' && (ref.current?.contains(document.activeElement) ?? false);
  useBrowserLayoutEffect(() => {
    const card = ref.current;
    if (hadFocus && card !== null && !card.contains(document.activeElement)) {
      card.querySelector<HTMLButtonElement>('button')?.focus();
    }
  });

  const { name, state } = item;
  const amount = amountText(item);
  const rate = rateText(item);
  const parts = partsText(item);
  // No bar where it would say nothing: a file waiting to be picked again, a cancelled one, and a
  // failure before the first byte (the reason says it all).
  const showBar =
    state !== 'needs-file' &&
    state !== 'cancelled' &&
    !(state === 'failed' && item.progress.bytesConfirmed === 0);
  return (
    <li ref={ref} className="ferry-upload" data-state={state}>
      <div className="ferry-upload__head">
        <span className="ferry-upload__name">{name}</span>
        {item.size !== undefined && <span className="ferry-upload__size">{formatBytes(item.size)}</span>}
      </div>
      {showBar && (
        <progress
          className="ferry-upload__bar"
          max={100}
          value={item.progress.percent ?? 0}
          aria-label={state === 'done' ? `Uploaded ${name}` : `Uploading ${name}`}
          aria-valuetext={progressValueText(item)}
        />
      )}
      <p className="ferry-upload__status">
        <span className="ferry-upload__state">{stateLabel(item)}</span>
        {showBar && (
          <span>
            {amount.percent} · {amount.bytes}
          </span>
        )}
        {rate.speed !== undefined && <span>{rate.speed}</span>}
        {rate.eta !== undefined && <span>{rate.eta}</span>}
        {parts !== undefined && state !== 'done' && <span>{parts}</span>}
        {state === 'needs-file' && <span>Choose {name} again to continue where it stopped.</span>}
        {item.restored && state !== 'needs-file' && <span>Continued after a reload</span>}
      </p>
      {item.error !== undefined && state === 'failed' && (
        <p className="ferry-upload__error">{item.error.message}</p>
      )}
      <div className="ferry-upload__actions">
        {primaryAction(item, actions)}
        {secondaryAction(item, actions)}
      </div>
    </li>
  );
});

export function UploadDropzone(props: UploadDropzoneProps): ReactNode {
  const { label, hint, className, unstyled, ...options } = props;
  const view = useUploads(options);
  const { items, totals, rejections } = view;
  const input = useRef<HTMLInputElement>(null);
  const target = useRef<HTMLButtonElement>(null);
  const [dragging, setDragging] = useState(false);
  const message = useAnnouncer(items, rejections);
  const hintText = hint ?? describeRules(options);
  const summary = summaryParts(totals);

  // One object for the component's life, so unchanged cards skip rendering.
  const [actions] = useState<CardActions>(() => ({
    store: view.store,
    choose: () => input.current?.click(),
    removed: () => target.current?.focus(),
  }));

  const onDragOver = (event: DragEvent<HTMLButtonElement>) => {
    if (!event.dataTransfer.types.includes('Files')) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    setDragging(true);
  };
  const onDragLeave = (event: DragEvent<HTMLButtonElement>) => {
    if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setDragging(false);
  };
  const onDrop = (event: DragEvent<HTMLButtonElement>) => {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer.files.length > 0) view.add(event.dataTransfer.files);
  };

  return (
    <div className={className === undefined ? 'ferry-dropzone' : `ferry-dropzone ${className}`}>
      {!unstyled && (
        <style href="ferry-dropzone" precedence="default">
          {dropzoneStyles}
        </style>
      )}
      <button
        ref={target}
        type="button"
        className="ferry-dropzone__target"
        data-dragging={dragging ? '' : undefined}
        onClick={actions.choose}
        onDragEnter={onDragOver}
        onDragOver={onDragOver}
        onDragLeave={onDragLeave}
        onDrop={onDrop}
      >
        <UploadIcon />
        <span className="ferry-dropzone__label">
          {dragging ? 'Drop to add files' : (label ?? <DefaultLabel />)}
        </span>
        {hintText !== '' && <span className="ferry-dropzone__hint">{hintText}</span>}
      </button>
      <input
        ref={input}
        type="file"
        multiple={options.maxFiles !== 1}
        accept={options.accept}
        hidden
        tabIndex={-1}
        onChange={(event) => {
          const files = event.currentTarget.files;
          if (files !== null && files.length > 0) view.add(files);
          // Cleared, so choosing the same file again is a change too.
          event.currentTarget.value = '';
        }}
      />
      <div className="ferry-vh" aria-live="polite">
        {message}
      </div>
      {rejections.length > 0 && (
        <div className="ferry-dropzone__rejections">
          <p>{rejections.length === 1 ? 'This file was not added:' : 'These files were not added:'}</p>
          <ul>
            {rejections.map((rejection, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: a rejection list is replaced whole, never reordered
              <li key={i}>{rejection.message}</li>
            ))}
          </ul>
          <button
            type="button"
            className="ferry-button"
            onClick={() => {
              view.dismissRejections();
              target.current?.focus();
            }}
          >
            Dismiss<span className="ferry-vh"> these messages</span>
          </button>
        </div>
      )}
      {totals.files > 1 && (
        <p className="ferry-dropzone__summary">
          <span>{summary.files}</span> · <span>{summary.bytes}</span>
        </p>
      )}
      {items.length > 0 && (
        <ul className="ferry-dropzone__list" aria-label="Uploads">
          {items.map((item) => (
            <UploadCard key={item.id} item={item} actions={actions} />
          ))}
        </ul>
      )}
    </div>
  );
}

function DefaultLabel(): ReactNode {
  return (
    <>
      <span className="ferry-dropzone__action">Choose files</span> or drop them here
    </>
  );
}

/**
 * The upload's life as an explicit state machine. Every change goes through `transition`, which
 * refuses a move the table does not allow, so an impossible sequence is a loud bug, not a silent one.
 *
 *   idle → creating → uploading ⇄ paused → completing → done | failed
 *                                                   (and cancelled from any live state)
 *
 * - `creating`: fingerprinting, looking up the resume store, creating the upload on the server.
 * - `uploading` ⇄ `paused`: `pause()` stops every request; `resume()` re-reads the server's state.
 * - `completing`: parts `complete` (tus finishes with its last PATCH, so it passes through quickly).
 * - `failed`: `start()` may try again from the upload URL it knows (a retry button).
 * - `uploading → creating`: the server lost the upload (404/410/403 on resume): start over.
 */
export type UploadState =
  | 'idle'
  | 'creating'
  | 'uploading'
  | 'paused'
  | 'completing'
  | 'done'
  | 'failed'
  | 'cancelled';

const TRANSITIONS: Record<UploadState, readonly UploadState[]> = {
  idle: ['creating', 'cancelled'],
  creating: ['uploading', 'paused', 'done', 'failed', 'cancelled'],
  uploading: ['completing', 'paused', 'creating', 'done', 'failed', 'cancelled'],
  paused: ['creating', 'uploading', 'cancelled'],
  completing: ['uploading', 'paused', 'done', 'failed', 'cancelled'],
  done: [],
  failed: ['creating', 'uploading', 'cancelled'],
  cancelled: [],
};

export function canTransition(from: UploadState, to: UploadState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isTerminal(state: UploadState): boolean {
  return state === 'done' || state === 'cancelled';
}

/** Holds the current state; `set` throws on a move the table forbids. */
export class StateMachine {
  #state: UploadState = 'idle';
  readonly #onChange: (state: UploadState, previous: UploadState) => void;

  constructor(onChange: (state: UploadState, previous: UploadState) => void) {
    this.#onChange = onChange;
  }

  get state(): UploadState {
    return this.#state;
  }

  set(to: UploadState): void {
    const from = this.#state;
    if (from === to) return;
    if (!canTransition(from, to)) throw new Error(`invalid upload state change: ${from} → ${to}`);
    this.#state = to;
    this.#onChange(to, from);
  }
}

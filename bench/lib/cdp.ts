// A bare Chrome DevTools Protocol client for the web section of the bench. Not Playwright: a page
// Playwright drives has the Network domain enabled, and Chromium then copies every request body into
// a DevTools event (an 8 MiB part becomes an 11 MB message, serialised on the page's main thread),
// which would slow the uploads and lengthen the main-thread tasks being measured. Here only Page,
// Runtime and DOM are used.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { track } from './servers.ts';

export const chromiumPath = process.env['FERRY_CHROMIUM'] ?? '/usr/bin/chromium';

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

interface CdpMessage {
  id?: number;
  method?: string;
  sessionId?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { message: string };
}

export interface CdpPage {
  /** Evaluates `expression` in the page (awaiting a promise) and returns its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
  /** Sets the files of the first element matching `selector` (an `<input type="file">`); fires `change`. */
  setFiles(selector: string, files: string[]): Promise<void>;
  close(): Promise<void>;
}

export interface CdpBrowser {
  /** The browser's main process id (its renderers and utilities are its descendants). */
  pid: number;
  /** A page in a fresh browser context (its own IndexedDB), loaded from `url`. */
  open(url: string): Promise<CdpPage>;
  close(): Promise<void>;
}

/** Headless Chromium's arguments here: DevTools on a free port, `profile` as its user data. */
export function chromiumArgs(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--remote-debugging-port=0',
    `--user-data-dir=${profile}`,
    'about:blank',
  ];
}

export async function launchChromium(): Promise<CdpBrowser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-chromium-'));
  const child: ChildProcess = spawn(chromiumPath, chromiumArgs(profile), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const wsUrl = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`Chromium did not start: ${seen.slice(-500)}`)), 30_000);
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      seen += text;
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then(() => reject(new Error(`Chromium exited: ${seen.slice(-500)}`)));
  });

  const socket = new WebSocket(wsUrl);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error('could not connect to Chromium')), {
      once: true,
    });
  });
  let nextId = 0;
  const pending = new Map<number, Pending>();
  const listeners = new Set<(message: CdpMessage) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as CdpMessage;
    if (message.id !== undefined) {
      const waiting = pending.get(message.id);
      pending.delete(message.id);
      if (message.error !== undefined) waiting?.reject(new Error(message.error.message));
      else waiting?.resolve(message.result);
      return;
    }
    for (const listener of listeners) listener(message);
  });
  const send = <T>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve: resolve as (result: unknown) => void, reject });
      socket.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
    });

  return {
    pid: child.pid ?? -1,
    async open(url) {
      const { browserContextId } = await send<{ browserContextId: string }>('Target.createBrowserContext');
      const { targetId } = await send<{ targetId: string }>('Target.createTarget', {
        url: 'about:blank',
        browserContextId,
      });
      const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', {
        targetId,
        flatten: true,
      });
      await send('Page.enable', {}, sessionId);
      const loaded = new Promise<void>((resolve) => {
        const listener = (message: CdpMessage) => {
          if (message.sessionId === sessionId && message.method === 'Page.loadEventFired') {
            listeners.delete(listener);
            resolve();
          }
        };
        listeners.add(listener);
      });
      await send('Page.navigate', { url }, sessionId);
      await loaded;
      const evaluate = async <T>(expression: string): Promise<T> => {
        const reply = await send<{ result: { value?: unknown }; exceptionDetails?: { text: string } }>(
          'Runtime.evaluate',
          { expression, awaitPromise: true, returnByValue: true },
          sessionId,
        );
        if (reply.exceptionDetails !== undefined)
          throw new Error(`in the page: ${reply.exceptionDetails.text}`);
        return reply.result.value as T;
      };
      return {
        evaluate,
        async setFiles(selector, files) {
          await send('DOM.enable', {}, sessionId);
          const { root } = await send<{ root: { nodeId: number } }>('DOM.getDocument', {}, sessionId);
          const { nodeId } = await send<{ nodeId: number }>(
            'DOM.querySelector',
            { nodeId: root.nodeId, selector },
            sessionId,
          );
          if (nodeId === 0) throw new Error(`no ${selector} on the page`);
          await send('DOM.setFileInputFiles', { nodeId, files }, sessionId);
        },
        async close() {
          await send('Target.closeTarget', { targetId }).catch(() => {});
          await send('Target.disposeBrowserContext', { browserContextId }).catch(() => {});
        },
      };
    },
    async close() {
      socket.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * The web app's build: `npm run build -w apps/web` writes `dist/`, which `ferry serve` serves at `/`
 * (index.html, content-hashed files under assets/, the SDK's hashing worker as its own file).
 *
 * `npm run dev -w apps/web` serves the sources with hot reload and passes the API paths on to a
 * running `ferry serve` (http://127.0.0.1:1080, or FERRY_URL).
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const ferry = process.env['FERRY_URL'] ?? 'http://127.0.0.1:1080';

export default defineConfig({
  plugins: [react()],
  build: {
    target: 'es2022',
    // Nothing inlined as a data: URL: every asset is a file the server's CSP allows ('self').
    assetsInlineLimit: 0,
    // Browsers the target covers all support <link rel="modulepreload">.
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  // The SDK starts its hashing worker as `new Worker(new URL('./hash-worker.js', import.meta.url),
  // { type: 'module' })`: Vite emits it as its own file under assets/, a module like the app.
  worker: { format: 'es' },
  server: {
    proxy: {
      '/files': ferry,
      '/uploads': ferry,
    },
  },
});

/**
 * The dropzone's stylesheet: plain CSS, no framework. `<UploadDropzone>` renders it once per page
 * through React 19's `<style href precedence>` (deduplicated and hoisted into <head>); with
 * `unstyled` it renders none and the app includes `dropzoneStyles` (or its own rules) itself.
 *
 * Colours meet WCAG 2.2 AA in both schemes (text ≥ 4.5:1, borders, focus ring and progress ≥ 3:1
 * against their background). The component paints its own background so the ratios hold on any
 * page. Every colour is a custom property (`--ferry-*`) an app may override. Nothing moves unless
 * the user allows motion (`prefers-reduced-motion`), and Windows' forced colours keep every state
 * visible.
 */
export const dropzoneStyles = `
.ferry-dropzone {
  --ferry-bg: #ffffff;
  --ferry-fg: #1b1b1f;
  --ferry-muted: #4a4a55;
  --ferry-border: #6e6e7a;
  --ferry-accent: #0b57d0;
  --ferry-accent-fg: #ffffff;
  --ferry-soft: #e8f0fe;
  --ferry-track: #e3e3e8;
  --ferry-danger: #b3261e;
  --ferry-success: #146c2e;
  --ferry-focus: #0b57d0;
  --ferry-radius: 0.75rem;
  color-scheme: light;
  display: grid;
  gap: 1rem;
  padding: 1rem;
  border-radius: var(--ferry-radius);
  background: var(--ferry-bg);
  color: var(--ferry-fg);
  font-family: inherit;
  line-height: 1.4;
}
@media (prefers-color-scheme: dark) {
  .ferry-dropzone {
    --ferry-bg: #1c1c21;
    --ferry-fg: #ececf1;
    --ferry-muted: #b8b8c4;
    --ferry-border: #8b8b98;
    --ferry-accent: #a8c7fa;
    --ferry-accent-fg: #0a2a5e;
    --ferry-soft: #263248;
    --ferry-track: #3a3a44;
    --ferry-danger: #ffb4ab;
    --ferry-success: #7fd08f;
    --ferry-focus: #a8c7fa;
    color-scheme: dark;
  }
}
.ferry-dropzone *,
.ferry-dropzone *::before,
.ferry-dropzone *::after {
  box-sizing: border-box;
}
.ferry-dropzone :focus-visible {
  outline: 3px solid var(--ferry-focus);
  outline-offset: 2px;
}
.ferry-dropzone__target {
  display: flex;
  flex-direction: column;
  align-items: center;
  justify-content: center;
  gap: 0.375rem;
  width: 100%;
  min-height: 9rem;
  padding: 1.5rem 1rem;
  border: 2px dashed var(--ferry-border);
  border-radius: var(--ferry-radius);
  background: var(--ferry-bg);
  color: var(--ferry-fg);
  font: inherit;
  text-align: center;
  cursor: pointer;
}
.ferry-dropzone__target:hover,
.ferry-dropzone__target[data-dragging] {
  border-color: var(--ferry-accent);
  background: var(--ferry-soft);
}
.ferry-dropzone__target[data-dragging] {
  border-style: solid;
}
.ferry-dropzone__icon {
  width: 2.25rem;
  height: 2.25rem;
  color: var(--ferry-accent);
}
.ferry-dropzone__label {
  font-size: 1.125rem;
  font-weight: 600;
}
.ferry-dropzone__action {
  color: var(--ferry-accent);
  text-decoration: underline;
  text-underline-offset: 0.2em;
}
.ferry-dropzone__hint,
.ferry-dropzone__summary {
  color: var(--ferry-muted);
  font-size: 0.875rem;
}
.ferry-dropzone__summary {
  margin: 0;
  font-variant-numeric: tabular-nums;
}
.ferry-dropzone__summary span {
  display: inline-block;
}
.ferry-dropzone__rejections {
  display: grid;
  gap: 0.5rem;
  justify-items: start;
  padding: 0.75rem 1rem;
  border: 1px solid var(--ferry-danger);
  border-left-width: 0.375rem;
  border-radius: 0.5rem;
}
.ferry-dropzone__rejections p,
.ferry-dropzone__rejections ul {
  margin: 0;
}
.ferry-dropzone__rejections ul {
  padding-left: 1.25rem;
}
.ferry-dropzone__list {
  display: grid;
  gap: 0.75rem;
  margin: 0;
  padding: 0;
  list-style: none;
}
.ferry-upload {
  display: grid;
  gap: 0.5rem;
  padding: 0.875rem 1rem;
  border: 1px solid var(--ferry-border);
  border-radius: var(--ferry-radius);
  background: var(--ferry-bg);
}
.ferry-upload__head {
  display: flex;
  flex-wrap: wrap;
  align-items: baseline;
  justify-content: space-between;
  gap: 0.25rem 1rem;
}
.ferry-upload__name {
  font-weight: 600;
  overflow-wrap: anywhere;
}
.ferry-upload__size,
.ferry-upload__status {
  color: var(--ferry-muted);
  font-size: 0.875rem;
  font-variant-numeric: tabular-nums;
}
.ferry-upload__bar {
  appearance: none;
  display: block;
  width: 100%;
  height: 0.75rem;
  border: 1px solid var(--ferry-border);
  border-radius: 999px;
  background: var(--ferry-track);
  color: var(--ferry-accent);
  overflow: hidden;
}
.ferry-upload__bar::-webkit-progress-bar {
  background: var(--ferry-track);
}
.ferry-upload__bar::-webkit-progress-value {
  background: var(--ferry-accent);
}
.ferry-upload__bar::-moz-progress-bar {
  background: var(--ferry-accent);
}
.ferry-upload[data-state='done'] .ferry-upload__bar::-webkit-progress-value {
  background: var(--ferry-success);
}
.ferry-upload[data-state='done'] .ferry-upload__bar::-moz-progress-bar {
  background: var(--ferry-success);
}
.ferry-upload[data-state='failed'] .ferry-upload__bar::-webkit-progress-value {
  background: var(--ferry-danger);
}
.ferry-upload[data-state='failed'] .ferry-upload__bar::-moz-progress-bar {
  background: var(--ferry-danger);
}
.ferry-upload[data-state='paused'] .ferry-upload__bar::-webkit-progress-value {
  background: var(--ferry-muted);
}
.ferry-upload[data-state='paused'] .ferry-upload__bar::-moz-progress-bar {
  background: var(--ferry-muted);
}
.ferry-upload__status {
  display: flex;
  flex-wrap: wrap;
  gap: 0.125rem 1rem;
  margin: 0;
}
.ferry-upload__state {
  color: var(--ferry-fg);
  font-weight: 600;
}
.ferry-upload[data-state='done'] .ferry-upload__state {
  color: var(--ferry-success);
}
.ferry-upload[data-state='failed'] .ferry-upload__state,
.ferry-upload__error {
  color: var(--ferry-danger);
}
.ferry-upload__error {
  margin: 0;
  font-size: 0.875rem;
}
.ferry-upload__actions {
  display: flex;
  flex-wrap: wrap;
  gap: 0.5rem;
}
.ferry-button {
  min-height: 2.25rem;
  min-width: 2.75rem;
  padding: 0.375rem 0.875rem;
  border: 1px solid var(--ferry-border);
  border-radius: 0.5rem;
  background: var(--ferry-bg);
  color: var(--ferry-fg);
  font: inherit;
  font-size: 0.875rem;
  font-weight: 600;
  cursor: pointer;
}
.ferry-button:hover {
  background: var(--ferry-soft);
}
.ferry-button--primary {
  border-color: var(--ferry-accent);
  background: var(--ferry-accent);
  color: var(--ferry-accent-fg);
}
.ferry-button--primary:hover {
  background: var(--ferry-accent);
  text-decoration: underline;
}
.ferry-vh {
  position: absolute;
  width: 1px;
  height: 1px;
  margin: -1px;
  padding: 0;
  overflow: hidden;
  clip-path: inset(50%);
  white-space: nowrap;
  border: 0;
}
@media (prefers-reduced-motion: no-preference) {
  .ferry-dropzone__target,
  .ferry-button {
    transition:
      background-color 0.15s ease,
      border-color 0.15s ease;
  }
}
@media (forced-colors: active) {
  .ferry-upload__bar::-webkit-progress-value {
    background: Highlight;
  }
  .ferry-upload__bar::-moz-progress-bar {
    background: Highlight;
  }
  .ferry-dropzone__target[data-dragging] {
    outline: 3px solid Highlight;
  }
}
`;

export * from './base64.ts';
export * from './errors.ts';
export * from './feed.ts';
export * from './parts.ts';
export * from './tus-headers.ts';

export * from './errors.ts';
export * from './tus-headers.ts';

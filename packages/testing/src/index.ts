export * from './describe-locker.ts';
export * from './describe-meta-store.ts';

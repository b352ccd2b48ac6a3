export * from './config.ts';
export * from './meta/locker.ts';
export * from './meta/memory-locker.ts';
export * from './meta/meta-store.ts';
export * from './meta/sqlite/sqlite-meta-store.ts';
export * from './stores/data-store.ts';
export * from './stores/fs/fs-data-store.ts';

export * from './chromium.ts';
export * from './describe-data-store.ts';
export * from './describe-locker.ts';
export * from './describe-meta-store.ts';
export * from './fault-proxy.ts';
export { seededRandom } from './fault-proxy-rules.ts';
export * from './page-server.ts';
export * from './s3-service.ts';
export * from './test-files.ts';

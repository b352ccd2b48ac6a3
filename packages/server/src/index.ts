export type { Authorizer } from './auth/authorizer.ts';
export { type Grant, typeAllowed } from './auth/grant.ts';
export {
  checkAuthSecret,
  MIN_SECRET_BYTES,
  mintUploadToken,
  type UploadTokenOptions,
} from './auth/upload-token.ts';
export * from './config.ts';
export * from './ferry.ts';
export * from './hooks/hook-types.ts';
export type { OutboxDispatcher } from './hooks/outbox-dispatcher.ts';
export {
  ATTEMPT_HEADER,
  EVENT_ID_HEADER,
  EVENT_TYPE_HEADER,
  SIGNATURE_HEADER,
  signWebhook,
  type VerifyWebhookOptions,
  verifyWebhook,
} from './hooks/webhook.ts';
export { errorResponse, toUploadError } from './http/error-response.ts';
export type { FetchHandler } from './http/fetch-handler.ts';
export type { NodeHandler } from './http/node-handler.ts';
export * from './http/types.ts';
export * from './meta/locker.ts';
export * from './meta/memory-locker.ts';
export * from './meta/meta-store.ts';
export * from './meta/sqlite/sqlite-meta-store.ts';
export * from './service/parts-service.ts';
export * from './service/presigned-parts.ts';
export * from './service/upload-events.ts';
export * from './service/upload-service.ts';
export * from './stores/data-store.ts';
export * from './stores/fs/fs-data-store.ts';
export * from './stores/s3/s3-data-store.ts';
export {
  choosePartPlan,
  DEFAULT_PART_SIZE as DEFAULT_S3_PART_SIZE,
  MAX_PART_SIZE as MAX_S3_PART_SIZE,
  MAX_PARTS as MAX_S3_PARTS,
  MIN_PART_SIZE as MIN_S3_PART_SIZE,
  type PartPlan,
  partSizeOf,
} from './stores/s3/s3-part-size.ts';

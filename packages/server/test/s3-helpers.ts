/** The S3 client the server tests inspect the bucket with, and the listing and clean-up they share. */
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '@ferry/testing';

/** A client of the test RGW (path style; checksums only where S3 requires them, as RGW needs). */
export function testS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: true,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The keys of the objects under `prefix` (one page: tests hold a few). */
export async function keysUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((object) => object.Key!);
}

/** Deletes every object under `prefix`. */
export async function removeUnder(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  for (const key of await keysUnder(s3, bucket, prefix)) {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
}

/** The upload token of a client command: `--token`, else `FERRY_TOKEN`; sent as a Bearer header. */
export function authorization(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>> | undefined,
): { headers?: Record<string, string> } {
  const token = flag || env?.['FERRY_TOKEN'] || undefined;
  return token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } };
}

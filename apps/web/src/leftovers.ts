/**
 * After a reload, the drop area continues the unfinished uploads of the protocol chosen now. Those
 * sent with the other protocol would be left behind: this finds them (in the SDK's resume store,
 * IndexedDB) so the app can give them a list of their own.
 */
import { findResumableUploads, type Protocol } from '@ferry/client';
import { useEffect, useState } from 'react';
import { ENDPOINTS, PROTOCOLS } from './protocol.ts';

/** The protocols other than `chosen` with unfinished uploads to this server's endpoints. */
export async function otherProtocolsWithUploads(chosen: Protocol): Promise<Protocol[]> {
  let found: Awaited<ReturnType<typeof findResumableUploads>>;
  try {
    found = await findResumableUploads();
  } catch {
    return [];
  }
  return PROTOCOLS.filter((protocol) => {
    if (protocol === chosen) return false;
    const endpoint = new URL(ENDPOINTS[protocol], location.href).href;
    return found.some(({ entry }) => entry.protocol === protocol && entry.endpoint === endpoint);
  });
}

/** Looked up once, for the protocol chosen when the page loaded. */
export function useLeftoverProtocols(chosenAtLoad: Protocol): readonly Protocol[] {
  const [protocols, setProtocols] = useState<readonly Protocol[]>([]);
  useEffect(() => {
    let current = true;
    void otherProtocolsWithUploads(chosenAtLoad).then((found) => {
      if (current && found.length > 0) setProtocols(found);
    });
    return () => {
      current = false;
    };
  }, [chosenAtLoad]);
  return protocols;
}

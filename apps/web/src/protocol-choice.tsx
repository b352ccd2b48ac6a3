/** The protocol for the next files: two radio buttons, each with a line saying what it does. */
import type { Protocol } from '@ferry/client';
import type { ReactNode } from 'react';
import { PROTOCOL_NAMES, PROTOCOLS } from './protocol.ts';

const DESCRIPTIONS: Record<Protocol, string> = {
  parts: 'Several parts of a file at once, in any order. The default.',
  tus: 'One stream per file, the protocol every tus client speaks.',
};

export function ProtocolChoice(props: { value: Protocol; onChange(protocol: Protocol): void }): ReactNode {
  return (
    <fieldset className="protocol">
      <legend>Send new files with</legend>
      <div className="protocol__options">
        {PROTOCOLS.map((protocol) => (
          <label key={protocol} className="protocol__option">
            <input
              type="radio"
              name="protocol"
              value={protocol}
              checked={props.value === protocol}
              onChange={() => props.onChange(protocol)}
              aria-describedby={`protocol-${protocol}-about`}
            />
            <span className="protocol__text">
              <span className="protocol__name">{PROTOCOL_NAMES[protocol]}</span>
              <span className="protocol__about" id={`protocol-${protocol}-about`}>
                {DESCRIPTIONS[protocol]}
              </span>
            </span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

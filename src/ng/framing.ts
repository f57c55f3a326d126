/**
 * The ng protocol's datagram framing (docs/ng.md): `COOKIE SP BENCODED-DICT`, the reply the same
 * way. The listener (control/listener-udp.ts) keeps the cookie and answers retransmissions from
 * the reply cache; this says where the cookie ends and what a datagram without one gets.
 */
import type { CommandOrigin } from '../base/net.ts';
import type { DatagramFraming } from '../control/listener-udp.ts';
import { encodeBencode } from './bencode.ts';

/** A UDP datagram's largest payload: an ng request carries a whole SDP. */
const MAX_NG_DATAGRAM = 65_535;

/** The framing of an ng socket; `run` queues a request and resolves with its encoded reply. */
export function ngFraming(
  run: (body: Buffer, origin: CommandOrigin) => Promise<Buffer>,
): DatagramFraming {
  return {
    maxBytes: MAX_NG_DATAGRAM,
    split: (data) => {
      const space = data.indexOf(0x20);
      if (space <= 0) return undefined;
      return { cookie: data.subarray(0, space).toString('latin1'), body: data.subarray(space + 1) };
    },
    run,
    // No cookie to echo (or one too long): an error the client cannot match, but an answer.
    uncookied: () =>
      Promise.resolve(
        encodeBencode({ result: 'error', 'error-reason': 'Invalid data (no cookie)' }),
      ),
  };
}

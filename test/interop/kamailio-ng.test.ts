/**
 * Kamailio's rtpengine module drives our daemon over the ng protocol (docs/ng.md) while SIPp
 * places real calls with real RTP through both: the SDP Kamailio gets back from offer and answer
 * points at the daemon, and the media goes through it both ways. Beyond the calls it shares with
 * rtpengine-ng.test.ts (the same scenarios against the reference, block_media() and bridge mode
 * with `direction` included), it runs what only this relay does the same way: start_recording()
 * (both legs into -r) and play_media() of a prompt. Needs kamailio (with rtpengine.so), sipp
 * (sip-tester) and tcpdump, and root for the capture; see suite.ts for what happens without
 * them. Own addresses and port windows, so it runs beside the other files.
 */
import t from 'tap';
import { CALL_SCENARIOS, runSuite } from './suite.ts';

t.setTimeout(300_000);

await runSuite(t, {
  name: 'ng',
  control: 'ng',
  uacIp: '127.0.0.9',
  uasIp: '127.0.0.10',
  portMin: 48900,
  portMax: 49199,
  bridge: { external: '127.0.0.11', portMin: 49800, portMax: 49899 },
  playback: true,
  concurrentCalls: 10,
  scenarios: [...CALL_SCENARIOS, 'ng-rtpstat', 'recording', 'playback', 'block', 'bridge'],
});

/**
 * Kamailio's rtpproxy module drives our daemon over the UDP control socket while SIPp places real
 * calls with real RTP through both (issue 7). Needs kamailio, sipp (sip-tester) and tcpdump, and
 * root for the capture; see suite.ts for what happens without them.
 */
import t from 'tap';
import { CALL_SCENARIOS, runSuite } from './suite.ts';

// About a minute of calls; the default per-file limit (package.json) is tighter than needed under load.
t.setTimeout(300_000);

await runSuite(t, {
  name: 'udp',
  control: 'udp',
  uacIp: '127.0.0.2',
  uasIp: '127.0.0.3',
  portMin: 48000,
  portMax: 48299,
  bridge: { external: '127.0.0.6', portMin: 48500, portMax: 48599 },
  playback: true,
  concurrentCalls: 20,
  scenarios: [...CALL_SCENARIOS, 'manage', 'recording', 'rtpstat', 'playback', 'bridge'],
});

/**
 * The reference on the same calls: Kamailio's rtpengine module drives Debian's rtpengine
 * (`rtpengine-daemon`, userspace forwarding, no kernel module) with the same kamailio-ng.cfg, and
 * SIPp places the same calls as kamailio-ng.test.ts does against our daemon; the suite's SDP and
 * media checks (SDP pointing at the relay, every RTP packet relayed unchanged both ways, no call
 * left) pass for both. Left out here, and run against ours only: start_recording() (rtpengine
 * writes its own spool format for its recording daemon), play_media() (rtpengine decodes audio
 * files with ffmpeg, ours plays prompts prepared per payload type). block_media() of the caller
 * runs on both. Bridge mode too: rtpengine with interfaces named "internal" and "external", ours
 * with -l INTERNAL/EXTERNAL.
 * Needs rtpengine besides what the suite needs; without it the file fails as root (CI installs
 * it with .ci/run) and skips otherwise.
 */
import t from 'tap';
import { RtpengineDaemon } from './harness.ts';
import { CALL_SCENARIOS, runSuite } from './suite.ts';

t.setTimeout(300_000);

if (RtpengineDaemon.binary() === undefined) {
  const reason =
    'rtpengine is not installed: apt-get install rtpengine-daemon (bash .ci/run does it)';
  if (process.getuid?.() === 0) t.fail(reason);
  else await t.test('the same calls through rtpengine', { skip: reason }, () => undefined);
} else {
  await runSuite(t, {
    name: 'rtpengine',
    control: 'ng',
    relay: 'rtpengine',
    uacIp: '127.0.0.12',
    uasIp: '127.0.0.13',
    portMin: 49900,
    portMax: 49999,
    bridge: { external: '127.0.0.14', portMin: 48300, portMax: 48399 },
    concurrentCalls: 10,
    scenarios: [...CALL_SCENARIOS, 'ng-rtpstat', 'block', 'bridge'],
  });
}

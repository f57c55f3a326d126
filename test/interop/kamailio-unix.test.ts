/**
 * The same calls as kamailio-udp.test.ts with Kamailio reaching the daemon over its unix control
 * socket (one connection per command, no cookie, no LF). Own addresses and port window, so both
 * files run side by side.
 */
import t from 'tap';
import { CALL_SCENARIOS, runSuite } from './suite.ts';

// About a minute of calls; the default per-file limit (package.json) is tighter than needed under load.
t.setTimeout(300_000);

await runSuite(t, {
  name: 'unix',
  control: 'unix',
  uacIp: '127.0.0.4',
  uasIp: '127.0.0.5',
  portMin: 48600,
  portMax: 48899,
  concurrentCalls: 20,
  scenarios: [...CALL_SCENARIOS, 'manage', 'recording', 'rtpstat'],
});

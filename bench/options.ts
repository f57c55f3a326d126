/** Command line of the relay benchmark (`npm run bench -- [options]`). */

export interface BenchOptions {
  readonly sessions: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly rate: number;
  readonly slots: number;
  readonly portMin: number;
  readonly portMax: number;
  readonly pin: boolean;
  readonly json: boolean;
  readonly recvBufferBytes: number;
  /** Where to write the per-100-ms time series as CSV; null = nowhere. */
  readonly trace: string | null;
  /** Command (program and leading arguments) run instead of our daemon; null = ours. */
  readonly target: readonly string[] | null;
  /** CPU list the daemon is pinned to (taskset -c). */
  readonly daemonCpus: string;
  /**
   * `--split-media`: once media flows, pin the daemon's busiest thread (the media worker) to
   * CPU 0 and its other threads to CPU 1, as on a host where media has a core of its own.
   */
  readonly splitMedia: boolean;
  /** Appended to every tag the generator and the probe send (`--tag-suffix`). */
  readonly tagSuffix: string;
  /** More arguments for the daemon (`--daemon-arg`, repeatable). */
  readonly daemonArgs: readonly string[];
  /** Where the daemon's stdout and stderr go (`--daemon-log`, appended); null = kept in memory. */
  readonly daemonLog: string | null;
  /** `--workers` given to our daemon; null = its default. */
  readonly workers: number | null;
  /** Callers of the control probe during the measured window; 0 = no probe. */
  readonly control: number;
  /** Ramp mode: sessions added per step; 0 = a single run. */
  readonly rampStep: number;
  /** Ramp mode: the most sessions tried. */
  readonly rampMax: number;
  /** Runs of the same configuration (`--repeat`); 1 = a single run. */
  readonly repeat: number;
  /** Which generator runs the packets: the native one (bench/rtpgen.c) when it builds, or Node. */
  readonly generator: 'auto' | 'native' | 'node';
  /**
   * `loopback`: everything on 127.0.0.1 in the host's namespace. `netns`: the daemon in a relay
   * namespace, the peers in an endpoints namespace, joined by veth pairs (bench/netns.ts).
   */
  readonly topology: 'loopback' | 'netns';
  /** `--kernel` given to our daemon; null = not given (the daemon's default). */
  readonly kernel: 'on' | 'off' | 'auto' | null;
  /** Run userspace (`--kernel off`) and kernel (`--kernel on`) back to back and compare. */
  readonly compare: boolean;
  /** Native generator: busy-poll before each send (`spin`) or sleep until it is due. */
  readonly genPoll: 'spin' | 'sleep';
  /** Native generator: sockets per session (`ports`) or two for all, batched (`shared`). */
  readonly endpoints: 'ports' | 'shared';
  /** netns: steer each namespace's receive processing to its own CPUs (RPS). */
  readonly rps: boolean;
  /** With the kernel path: the longest wait (s) for the streams to be offloaded before measuring. */
  readonly offloadWaitS: number;
}

/**
 * `kernel streams` of `Iv` once every session is offloaded: it counts stream components (RTP,
 * RTCP) with both directions in the kernel, and the generator sends RTP only (RTCP never latches).
 */
export function expectedKernelStreams(sessions: number): number {
  return sessions;
}

export const USAGE = `usage: npm run bench -- [options]

Starts an rtpproxy-compatible daemon, sets up N sessions over its UDP control socket from a
separate load-generator process and relays 172-byte RTP (50 pps per direction per session).

options:
  --sessions N      sessions (default 500; two peers and two RTP streams each)
  --duration S      measured seconds (default 10)
  --warmup S        unmeasured seconds of load before the measurement (default 2)
  --rate PPS        packets per second per direction per session (default 50 = 20 ms)
  --generator G     auto (default), native or node. native: bench/rtpgen.c, built with cc on
                    first use; sends every stream at its own instant of the tick and takes
                    arrival times from the kernel, so the latency figures are the relay's.
                    node: the packets go through the Node generator's event loop (slots below),
                    whose own delays are in the figures. auto: native when cc builds it
  --slots N         Node generator: spread the streams over N sub-slots of each tick (default
                    20; 1 = all streams send at the same instant of the tick)
  --port-min P      daemon media port range, passed as -m (default 20000)
  --port-max P      daemon media port range, passed as -M (default 29999; 39999 with
                    --topology netns, whose namespace has no other sockets)
  --recv-buffer B   SO_RCVBUF asked for on each generator peer socket (default 1048576)
  --workers N       run our daemon with --workers N (default: its own default)
  --control K       during the measured window, K callers each run U, L, D back to back on a
                    second control client, and the report gives setups per second and the
                    command round-trip times (default 0: no control load)
  --ramp STEP       ramp mode: runs of --sessions, then STEP more sessions each time, until loss
                    reaches 0.1 % or p99 latency 50 ms (or --ramp-max); prints the highest
                    sustainable rate (use a short --duration, e.g. 5)
  --repeat N        run the same load N times (fresh daemon each time) and print the median and
                    range of the figures: latency tails vary from run to run
  --ramp-max N      ramp mode: the most sessions tried (default: what the port range holds)
  --topology T      loopback (default): daemon and peers on 127.0.0.1 in this namespace.
                    netns (needs root): the bench creates a relay and an endpoints network
                    namespace joined by two veth pairs, runs the daemon in the relay one
                    (ip_forward on, -l and the control socket on its address) and everything
                    else in the endpoints one, callers on one link and callees on the other, so
                    every relayed packet crosses the relay's forward path; deleted on exit
  --kernel MODE     on, off or auto: passed to our daemon as --kernel (needs --topology netns
                    for on and auto). With on or auto the generator first sends one packet per
                    stream a second (the parties latch) until \`Iv\` reports every session's RTP
                    offloaded (bounded by --offload-wait), then warms up and measures
  --compare         --topology netns, and every run twice on fresh daemons, --kernel off then
                    --kernel on (with --ramp: both ramps), then both side by side
  --no-rps          netns: leave receive processing where the kernel puts it (in softirq on the
                    sender's CPU) instead of steering it (RPS) to the relay's CPU on the relay's
                    links and to the generator's CPU on the endpoints' links, as on two hosts
  --offload-wait S  the longest wait for the offload before measuring anyway (default 20)
  --gen-poll P      spin or sleep: the native generator busy-polls for 2 ms before each send
                    (spin, the loopback default: the relay's sends find a running receiver) or
                    sleeps until the send is due (sleep, the netns default: its CPU time and the
                    machine's are then work done, not polling)
  --endpoints E     ports or shared: the native generator's peers are two connected sockets
                    per session, one system call per packet (ports, the loopback default), or
                    one caller and one callee socket for every session, sent with sendmmsg and
                    read with recvmmsg in batches (shared, the netns default: one generator
                    thread then offers several times the rate)
  --split-media     with --workers 1: during the warm-up, pin the daemon's busiest thread (the
                    media worker) to CPU 0 and its other threads (control, sessions) to CPU 1,
                    the generator's CPU: media gets a core of its own as on a real host
  --tag-suffix S    append S to every tag sent (e.g. ';1': rtpengine's rtpproxy protocol needs
                    a media number)
  --daemon-arg ARG  one more argument for the daemon, repeatable (e.g. --daemon-arg
                    --no_connect_media)
  --daemon-log F    append the daemon's stdout and stderr to file F (e.g. with --daemon-arg -d
                    --daemon-arg INFO); by default only its last lines are kept, for errors
  --daemon-cpus L   pin the daemon to CPU list L instead of 0 (e.g. 0,1 to give media workers a
                    core of their own; the generator stays on CPU 1)
  --no-pin          do not pin the daemon to CPU 0 and the generator to CPU 1 with taskset
  --trace FILE      write a CSV time series (per 100 ms: packets sent and received, largest
                    latency and send lateness, daemon and generator CPU %) to FILE
  --json            print one JSON object with the figures instead of the text report
  --binary PATH     run PATH instead of our daemon, with the same arguments
  --target CMD...   run CMD (every remaining argument) instead of our daemon, followed by the same
                    arguments; e.g. --target /usr/local/bin/rtpproxy
  -h, --help        this text

The daemon gets: -f -F -s udp:ADDR:PORT -l ADDR -m MIN -M MAX -d ERR, with ADDR 127.0.0.1 and
--nft off on loopback (no nftables table in this namespace), the relay namespace's address with
--topology netns (default media range 20000..39999 there).
`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function num(
  flag: string,
  value: string | undefined,
  min: number,
  max: number,
  integer = true,
): number {
  if (value === undefined) throw new UsageError(`${flag} needs a value`);
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new UsageError(
      `${flag}: expected ${integer ? 'an integer' : 'a number'} in ${String(min)}..${String(max)}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** Parses argv (without node and script); returns null for --help. */
export function parseArgs(argv: readonly string[]): BenchOptions | null {
  let sessions = 500;
  let durationS = 10;
  let warmupS = 2;
  let rate = 50;
  let slots = 20;
  let portMin = 20000;
  let portMax: number | null = null;
  let pin = true;
  let json = false;
  let recvBufferBytes = 1024 * 1024;
  let target: string[] | null = null;
  let trace: string | null = null;
  let workers: number | null = null;
  let daemonCpus = '0';
  let splitMedia = false;
  let tagSuffix = '';
  const daemonArgs: string[] = [];
  let daemonLog: string | null = null;
  let control = 0;
  let rampStep = 0;
  let rampMax = 0;
  let generator: BenchOptions['generator'] = 'auto';
  let repeat = 1;
  let topology: BenchOptions['topology'] | null = null;
  let kernel: BenchOptions['kernel'] = null;
  let compare = false;
  let genPoll: BenchOptions['genPoll'] | null = null;
  let endpoints: BenchOptions['endpoints'] | null = null;
  let offloadWaitS = 20;
  let rps = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const next = (): string | undefined => argv[++i];
    switch (a) {
      case '-h':
      case '--help':
        return null;
      case '--sessions':
        sessions = num(a, next(), 1, 15000);
        break;
      case '--duration':
        durationS = num(a, next(), 0.1, 3600, false);
        break;
      case '--warmup':
        warmupS = num(a, next(), 0, 600, false);
        break;
      case '--rate':
        rate = num(a, next(), 1, 1000);
        break;
      case '--slots':
        slots = num(a, next(), 1, 1000);
        break;
      case '--port-min':
        portMin = num(a, next(), 1024, 65535);
        break;
      case '--port-max':
        portMax = num(a, next(), 1024, 65535);
        break;
      case '--recv-buffer':
        recvBufferBytes = num(a, next(), 4096, 256 * 1024 * 1024);
        break;
      case '--tag-suffix': {
        const suffix = next();
        if (suffix === undefined || /\s/.test(suffix)) {
          throw new UsageError('--tag-suffix needs a value without spaces');
        }
        tagSuffix = suffix;
        break;
      }
      case '--split-media':
        splitMedia = true;
        break;
      case '--daemon-arg': {
        const arg = next();
        if (arg === undefined) throw new UsageError('--daemon-arg needs a value');
        daemonArgs.push(arg);
        break;
      }
      case '--daemon-log': {
        const file = next();
        if (file === undefined || file === '') {
          throw new UsageError('--daemon-log needs a file name');
        }
        daemonLog = file;
        break;
      }
      case '--daemon-cpus': {
        const list = next();
        if (list === undefined || !/^[0-9]+([-,][0-9]+)*$/.test(list)) {
          throw new UsageError('--daemon-cpus needs a CPU list such as 0 or 0,1');
        }
        daemonCpus = list;
        break;
      }
      case '--workers':
        workers = num(a, next(), 0, 64);
        break;
      case '--control':
        control = num(a, next(), 0, 256);
        break;
      case '--ramp':
        rampStep = num(a, next(), 1, 15000);
        break;
      case '--repeat':
        repeat = num(a, next(), 1, 50);
        break;
      case '--ramp-max':
        rampMax = num(a, next(), 1, 15000);
        break;
      case '--generator': {
        const g = next();
        if (g !== 'auto' && g !== 'native' && g !== 'node') {
          throw new UsageError('--generator needs auto, native or node');
        }
        generator = g;
        break;
      }
      case '--topology': {
        const t = next();
        if (t !== 'loopback' && t !== 'netns') {
          throw new UsageError('--topology needs loopback or netns');
        }
        topology = t;
        break;
      }
      case '--kernel': {
        const k = next();
        if (k !== 'on' && k !== 'off' && k !== 'auto') {
          throw new UsageError('--kernel needs on, off or auto');
        }
        kernel = k;
        break;
      }
      case '--compare':
        compare = true;
        break;
      case '--gen-poll': {
        const p = next();
        if (p !== 'spin' && p !== 'sleep') throw new UsageError('--gen-poll needs spin or sleep');
        genPoll = p;
        break;
      }
      case '--endpoints': {
        const e = next();
        if (e !== 'ports' && e !== 'shared') {
          throw new UsageError('--endpoints needs ports or shared');
        }
        endpoints = e;
        break;
      }
      case '--offload-wait':
        offloadWaitS = num(a, next(), 1, 600);
        break;
      case '--no-rps':
        rps = false;
        break;
      case '--no-pin':
        pin = false;
        break;
      case '--trace': {
        const file = next();
        if (file === undefined || file === '') throw new UsageError('--trace needs a file name');
        trace = file;
        break;
      }
      case '--json':
        json = true;
        break;
      case '--binary': {
        const path = next();
        if (path === undefined || path === '') throw new UsageError('--binary needs a path');
        target = [path];
        break;
      }
      case '--target': {
        const rest = argv.slice(i + 1);
        if (rest.length === 0) throw new UsageError('--target needs a command');
        target = [...rest];
        i = argv.length;
        break;
      }
      default:
        throw new UsageError(`unknown option ${JSON.stringify(a)}`);
    }
  }
  if (repeat > 1 && rampStep > 0) throw new UsageError('--repeat and --ramp do not go together');
  if (compare && topology === 'loopback') {
    throw new UsageError('--compare runs in the netns topology (the kernel path needs forwarding)');
  }
  const topo = topology ?? (compare ? 'netns' : 'loopback');
  if (compare && (kernel !== null || repeat > 1)) {
    throw new UsageError('--compare sets --kernel itself, and does not go with --repeat');
  }
  if (topo === 'loopback' && (kernel === 'on' || kernel === 'auto')) {
    throw new UsageError(
      `--kernel ${kernel} needs --topology netns: on loopback nothing is forwarded, and the bench ` +
        "creates no nftables table in this host's namespace",
    );
  }
  if ((kernel !== null || compare) && target !== null) {
    throw new UsageError('--kernel and --compare are options of our daemon, not of --target');
  }
  portMax ??= topo === 'netns' ? 39999 : 29999;
  const pairs = Math.floor((portMax - portMin + 1) / 2);
  const fits = Math.floor((pairs - 16 - 2 * control) / 2);
  if (rampStep > 0) rampMax = Math.min(rampMax === 0 ? fits : rampMax, fits);
  if (pairs < 2 * sessions + 16 + 2 * control) {
    throw new UsageError(
      `port range ${String(portMin)}..${String(portMax)} has ${String(pairs)} RTP/RTCP pairs; ` +
        `${String(sessions)} sessions need ${String(2 * sessions)} (plus headroom): widen it`,
    );
  }
  return {
    sessions,
    durationS,
    warmupS,
    rate,
    slots,
    portMin,
    portMax,
    pin,
    json,
    recvBufferBytes,
    trace,
    target,
    daemonCpus: splitMedia ? '0,1' : daemonCpus,
    splitMedia,
    tagSuffix,
    daemonArgs,
    daemonLog,
    workers,
    control,
    rampStep,
    rampMax,
    generator,
    repeat,
    topology: topo,
    kernel,
    compare,
    genPoll: genPoll ?? (topo === 'netns' ? 'sleep' : 'spin'),
    endpoints: endpoints ?? (topo === 'netns' ? 'shared' : 'ports'),
    offloadWaitS,
    rps,
  };
}

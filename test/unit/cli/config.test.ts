import t from 'tap';
import type { Config } from '../../../src/base/config.ts';
import {
  buildConfig,
  defaultWorkers,
  isConfigErrors,
  needsResolution,
  type ConfigError,
} from '../../../src/cli/config.ts';
import { parseOptions, type RawOptions } from '../../../src/cli/options.ts';

/** argv -> RawOptions, failing the test on a usage error. */
function raw(argv: readonly string[]): RawOptions {
  const parsed = parseOptions(argv);
  if (!parsed.ok) {
    throw new Error(`unexpected usage error for ${JSON.stringify(argv)}: ${parsed.message}`);
  }
  return parsed.options;
}

function config(argv: readonly string[]): Config {
  const built = buildConfig(raw(argv));
  if (isConfigErrors(built)) {
    throw new Error(
      `unexpected config errors for ${JSON.stringify(argv)}: ${JSON.stringify(built)}`,
    );
  }
  return built;
}

function errors(argv: readonly string[]): readonly ConfigError[] {
  const built = buildConfig(raw(argv));
  if (!isConfigErrors(built)) throw new Error(`expected config errors for ${JSON.stringify(argv)}`);
  return built;
}

t.test('buildConfig() defaults', async (t) => {
  const c = config([]);
  t.same(c, {
    foreground: false,
    controlSockets: [{ kind: 'unix', path: '/var/run/rtpproxy.sock' }],
    addresses: [{ address: '0.0.0.0', family: 4 }],
    bridge: false,
    portMin: 35000,
    portMax: 64998,
    sequentialPorts: false,
    ttl: 60,
    setupTtl: 60,
    independentTtl: false,
    tos: 184,
    sendTwice: false,
    pcap: false,
    recordAll: false,
    noRtcpRecord: false,
    notifyTargets: [],
    kamailioNotify: false,
    pidFile: '/var/run/rtpproxy.pid',
    socketMode: 0o660,
    allowRoot: false,
    logLevel: 'warn',
    logFacility: 'LOG_DAEMON',
    noChdir: false,
    noRedirect: false,
    forceAsymmetric: false,
    bridgeSymmetric: false,
    noResolve: false,
    overloadProt: false,
    workers: defaultWorkers(),
    connectMedia: true,
    nft: 'auto',
    kernel: 'auto',
    strictSource: true,
  });
  t.ok(Object.isFrozen(c), 'config is frozen');
  t.ok(Object.isFrozen(c.addresses), 'addresses are frozen');
  t.ok(Object.isFrozen(c.controlSockets), 'control sockets are frozen');
  t.equal(config(['-f']).logLevel, 'debug', 'DBUG in the foreground');
});

t.test('buildConfig() maps every flag', async (t) => {
  const c = config([
    '-f',
    '-b',
    '-i',
    '-2',
    '-P',
    '-a',
    '-R',
    '-F',
    '-D',
    '-s',
    'udp:127.0.0.1:2000',
    '-s',
    'cunix:/tmp/x.sock',
    '-T',
    '30',
    '-W',
    '5',
    '-t',
    '0',
    '-r',
    '/rec',
    '-S',
    '/spool',
    '-n',
    'unix:/tmp/n.sock',
    '-n',
    'tcp:127.0.0.1:9999',
    '-p',
    '/tmp/p.pid',
    '-u',
    'rtp:media',
    '-w',
    '432',
    '-L',
    '4096',
    '-d',
    'info:local5',
    '--nice',
    '5',
    '--force_asymmetric',
    '--no_resolve',
    '--no_redirect',
    '--overload_prot',
  ]);
  t.match(c, {
    foreground: true,
    sequentialPorts: true,
    independentTtl: true,
    sendTwice: true,
    pcap: true,
    recordAll: true,
    noRtcpRecord: true,
    allowRoot: true,
    noChdir: true,
    controlSockets: [
      { kind: 'udp', host: '127.0.0.1', port: 2000 },
      { kind: 'cunix', path: '/tmp/x.sock' },
    ],
    ttl: 30,
    setupTtl: 5,
    tos: 0,
    recordDir: '/rec',
    spoolDir: '/spool',
    notifyTargets: ['unix:/tmp/n.sock', 'tcp:127.0.0.1:9999'],
    pidFile: '/tmp/p.pid',
    user: 'rtp',
    group: 'media',
    socketMode: 432,
    fileLimit: 4096,
    logLevel: 'info',
    logFacility: 'LOG_LOCAL5',
    nice: 5,
    forceAsymmetric: true,
    noResolve: true,
    noRedirect: true,
    overloadProt: true,
  });
});

/** Rows: argv, then the fields the config must have. */
const okCases: readonly (readonly [
  argv: readonly string[],
  want: Partial<Record<keyof Config, unknown>>,
])[] = [
  // Port range (docs/protocol.md 4.3).
  [['-m', '23820', '-M', '23823'], { portMin: 23820, portMax: 23822 }],
  [['-m', '35001'], { portMin: 35002, portMax: 64998 }],
  [['-M', '65000'], { portMin: 35000, portMax: 64998 }],
  [['-M', '65001'], { portMax: 65000 }],
  [['-M', '65535'], { portMax: 65534 }],
  [['-m', '1', '-M', '4'], { portMin: 2, portMax: 2 }],
  [['-m', '2', '-M', '3'], { portMin: 2, portMax: 2 }],
  [['-m65534', '-M65535'], { portMin: 65534, portMax: 65534 }],
  // Timeouts.
  [['-T', '10'], { ttl: 10, setupTtl: 10 }],
  [['-T10', '-W3'], { ttl: 10, setupTtl: 3 }],
  [['-W', '7'], { ttl: 60, setupTtl: 7 }],
  [['-T', '1'], { ttl: 1 }],
  // TOS.
  [['-t', '255'], { tos: 255 }],
  [['-t', '+5'], { tos: 5 }],
  // nftables.
  [['--nft', 'on'], { nft: 'on' }],
  [['--nft=off'], { nft: 'off', kernel: 'off' }],
  [['--nft', 'auto'], { nft: 'auto' }],
  // The kernel path (in the nftables table).
  [['--kernel', 'on'], { kernel: 'on', nft: 'auto' }],
  [['--kernel=off'], { kernel: 'off' }],
  [['--nft', 'off', '--kernel', 'auto'], { kernel: 'off' }],
  // Pid file.
  [['-p', '/dev/null'], { pidFile: undefined }],
  [['-p', 'rel.pid'], { pidFile: 'rel.pid' }],
  // -u and -w.
  // Unix control sockets: 0660 by default, with or without a group (ours; the reference: 0755
  // with a group, the umask's mode otherwise).
  [['-u', 'rtpproxy'], { user: 'rtpproxy', group: undefined, socketMode: 0o660 }],
  [['-u', 'rtpproxy', '-w', '432'], { user: 'rtpproxy', socketMode: 432 }],
  [['-w', '384'], { socketMode: 384 }],
  [['-u', 'a:b'], { user: 'a', group: 'b', socketMode: 0o660 }],
  [['-u', ':b'], { user: undefined, group: 'b', socketMode: 0o660 }],
  [['-u', ':b', '-w', '0'], { group: 'b', socketMode: undefined }], // 0: not applied, like the reference
  [['-u', ':b', '-w', '4095'], { group: 'b', socketMode: 4095 }],
  // -d forms.
  [['-d', 'DBUG'], { logLevel: 'debug', logFacility: 'LOG_DAEMON' }],
  [['-d', 'dbug'], { logLevel: 'debug' }],
  [['-d', 'Info'], { logLevel: 'info' }],
  [['-d', 'WARN'], { logLevel: 'warn' }],
  [['-d', 'err'], { logLevel: 'error' }],
  [['-d', 'CRIT'], { logLevel: 'fatal' }],
  [['-d', 'INFO:LOG_LOCAL5'], { logLevel: 'info', logFacility: 'LOG_LOCAL5' }],
  [['-d', 'INFO:local0'], { logFacility: 'LOG_LOCAL0' }],
  [['-d', 'INFO:log_user'], { logFacility: 'LOG_USER' }],
  [['-d', 'INFO:USER'], { logFacility: 'LOG_USER' }],
  [['-d', 'WARN:daemon'], { logFacility: 'LOG_DAEMON' }],
  [['-d', 'ERR:LOG_LOCAL7'], { logFacility: 'LOG_LOCAL7' }],
  [['-d', 'ERR:authpriv'], { logFacility: 'LOG_AUTHPRIV' }],
  // Misc.
  [['-L', '1'], { fileLimit: 1 }],
  [['--nice', '-20'], { nice: -20 }],
  [['--nice=20'], { nice: 20 }],
  [['--nice=-5'], { nice: -5 }],
  [['--workers', '0'], { workers: 0 }],
  [['--workers=4'], { workers: 4 }],
  [['--no_connect_media'], { connectMedia: false }],
  [['--no_strict_source'], { strictSource: false }],
  [['-c', 'fifo'], {}],
  [['-c', 'rr'], {}],
  [['--config', '/etc/rtpproxy.conf', '--dso', 'a.so', '--dso', 'b.so'], {}],
  [['-f', '-s', 'stdio:'], { controlSockets: [{ kind: 'stdio' }] }],
  [['-f', '-s', 'stdioc:'], { controlSockets: [{ kind: 'stdioc' }] }],
  [
    ['--no_resolve', '-s', 'udp:*:22222'],
    { controlSockets: [{ kind: 'udp', host: '0.0.0.0', port: 22222 }] },
  ],
  [
    ['-s', 'udp:localhost:22222'],
    { controlSockets: [{ kind: 'udp', host: 'localhost', port: 22222 }] },
  ],
  // Addresses (docs/protocol.md 4.6).
  [['-l', '192.0.2.1'], { bridge: false, addresses: [{ address: '192.0.2.1', family: 4 }] }],
  [['-l', '*'], { addresses: [{ address: '0.0.0.0', family: 4 }] }],
  [['-l', '0.0.0.0'], { addresses: [{ address: '0.0.0.0', family: 4 }] }],
  [['-6', '::'], { addresses: [{ address: '::', family: 6 }] }],
  [['-6', '*'], { addresses: [{ address: '::', family: 6 }] }],
  [['-6', '2001:db8::1'], { addresses: [{ address: '2001:db8::1', family: 6 }] }],
  [['-l', 'v4@192.0.2.1'], { addresses: [{ address: '192.0.2.1', family: 4, label: 'v4' }] }],
  [
    ['-l', '192.0.2.1=203.0.113.1'],
    { addresses: [{ address: '192.0.2.1', family: 4, advertised: '203.0.113.1' }] },
  ],
  [
    ['-l', '192.0.2.1', '-6', 'v6@2001:db8::1'],
    {
      bridge: false,
      addresses: [
        { address: '192.0.2.1', family: 4 },
        { address: '2001:db8::1', family: 6, label: 'v6' },
      ],
    },
  ],
  [
    ['-6', '2001:db8::1', '-l', 'v4@192.0.2.1=203.0.113.9'],
    {
      addresses: [
        { address: '2001:db8::1', family: 6 },
        { address: '192.0.2.1', family: 4, label: 'v4', advertised: '203.0.113.9' },
      ],
    },
  ],
  [
    ['-l', 'a@192.0.2.1', '-l', 'b@192.0.2.2', '-6', 'c@::1'],
    {
      addresses: [
        { address: '192.0.2.1', family: 4, label: 'a' },
        { address: '192.0.2.2', family: 4, label: 'b' },
        { address: '::1', family: 6, label: 'c' },
      ],
    },
  ],
  // -A outside bridge mode is ignored.
  [['-l', '192.0.2.1', '-A', '203.0.113.1'], { addresses: [{ address: '192.0.2.1', family: 4 }] }],
  // Bridge mode.
  [
    ['-l', '10.0.0.1/192.0.2.1'],
    {
      bridge: true,
      forceAsymmetric: true,
      addresses: [
        { address: '10.0.0.1', family: 4 },
        { address: '192.0.2.1', family: 4 },
      ],
    },
  ],
  [
    ['-l', '10.0.0.1', '-6', '/2001:db8::1'],
    {
      bridge: true,
      addresses: [
        { address: '10.0.0.1', family: 4 },
        { address: '2001:db8::1', family: 6 },
      ],
    },
  ],
  [
    ['-6', '2001:db8::1/2001:db8::2'],
    {
      bridge: true,
      addresses: [
        { address: '2001:db8::1', family: 6 },
        { address: '2001:db8::2', family: 6 },
      ],
    },
  ],
  [
    ['-l', '/192.0.2.1', '-6', 'fd00::1'],
    {
      bridge: true,
      addresses: [
        { address: 'fd00::1', family: 6 },
        { address: '192.0.2.1', family: 4 },
      ],
    },
  ],
  [
    ['-l', '10.0.0.1/192.0.2.1', '-A', '10.9.9.9/203.0.113.1'],
    {
      bridge: true,
      addresses: [
        { address: '10.0.0.1', family: 4, advertised: '10.9.9.9' },
        { address: '192.0.2.1', family: 4, advertised: '203.0.113.1' },
      ],
    },
  ],
  [
    ['-l', '10.0.0.1/192.0.2.1', '-l', 'x@192.0.2.7'],
    {
      bridge: true,
      addresses: [
        { address: '10.0.0.1', family: 4 },
        { address: '192.0.2.1', family: 4 },
        { address: '192.0.2.7', family: 4, label: 'x' },
      ],
    },
  ],
  [
    ['-l', '10.0.0.1/192.0.2.1', '--bridge_symmetric'],
    { bridge: true, forceAsymmetric: false, bridgeSymmetric: true },
  ],
  [
    ['-l', '10.0.0.1/192.0.2.1', '--bridge_symmetric', '--force_asymmetric'],
    { forceAsymmetric: false },
  ],
  [['--bridge_symmetric'], { bridge: false, forceAsymmetric: false, bridgeSymmetric: true }],
  // Host names are kept as given (main.ts resolves them).
  [['-l', 'media.example.com'], { addresses: [{ address: 'media.example.com', family: 4 }] }],
  [
    ['-l', 'media-1', '-6', 'v6@localhost'],
    {
      addresses: [
        { address: 'media-1', family: 4 },
        { address: 'localhost', family: 6, label: 'v6' },
      ],
    },
  ],
];

for (const [argv, want] of okCases) {
  t.test(`buildConfig(${argv.join(' ')})`, async (t) => {
    const c = config(argv);
    for (const [key, value] of Object.entries(want)) {
      if (value === undefined) t.notOk(key in c, `${key} is absent`);
      else t.same(c[key as keyof Config], value, key);
    }
  });
}

/** Rows: argv, then the flag and a pattern of the message of one of the errors. */
const errorCases: readonly (readonly [argv: readonly string[], flag: string, message: RegExp])[] = [
  // Port range.
  [['-m', '0'], '-m', /between 1 and 65535/],
  [['-m', '65536'], '-m', /between 1 and 65535/],
  [['-M', '0'], '-M', /between 1 and 65535/],
  [['-M', '70000'], '-M', /between 1 and 65535/],
  [['-m', '40000', '-M', '40000'], '-m/-M', /range is empty/],
  [['-m', '40001', '-M', '40002'], '-m/-M', /range is empty/],
  [['-m', '40000', '-M', '39999'], '-m/-M', /range is empty/],
  [['-M', '2'], '-m/-M', /range is empty/],
  // Timeouts, TOS, modes, limits.
  [['-T', '0'], '-T', /at least 1/],
  [['-T', '-5'], '-T', /at least 1/],
  [['-W', '0'], '-W', /at least 1/],
  [['-t', '-1'], '-t', /between 0 and 255/],
  [['-t', '256'], '-t', /between 0 and 255/],
  [['--nft', 'yes'], '--nft', /auto, on or off/],
  [['--kernel', 'yes'], '--kernel', /auto, on or off/],
  [['--kernel', 'on', '--nft', 'off'], '--kernel', /drop --nft off/],
  [['-w', '4096'], '-w', /0 to 4095/],
  [['-w', '-1'], '-w', /0 to 4095/],
  [['-L', '0'], '-L', /positive/],
  [['--nice', '21'], '--nice', /-20 and 20/],
  [['--nice=-21'], '--nice', /-20 and 20/],
  [['--workers', '65'], '--workers', /0\.\.64/],
  [['-c', 'other'], '-c', /fifo or rr/],
  [['-c', 'FIFO'], '-c', /fifo or rr/],
  // Recording.
  [['-S', '/spool'], '-S', /needs a recording directory/],
  [['-r', ''], '-r', /empty/],
  // Control sockets.
  [['-s', 'stdio:'], '-s', /needs -f/],
  [['-s', 'stdioc:'], '-s', /needs -f/],
  [['-s', 'udp:127.0.0.1:99999'], '-s', /bad port/],
  [['-s', 'systemd:'], '-s', /not supported/],
  [['-s', 'unix:'], '-s', /empty socket path/],
  [['--no_resolve', '-s', 'udp:localhost:22222'], '-s', /--no_resolve/],
  // Pid file, notify, user.
  [['-p', ''], '-p', /empty/],
  [['-n', ''], '-n', /empty/],
  [['-u', ''], '-u', /empty/],
  [['-u', 'user:'], '-u', /group name .* empty/],
  [['-u', ':'], '-u', /group name .* empty/],
  // -d.
  [['-d', 'DEBUG'], '-d', /not a log level/],
  [['-d', ''], '-d', /not a log level/],
  [['-d', 'INFO:LOCAL8'], '-d', /not a syslog facility/],
  [['-d', 'INFO:'], '-d', /not a syslog facility/],
  [['-d', 'INFO:LOG_'], '-d', /not a syslog facility/],
  // --config / --dso.
  [['--config', ''], '--config', /empty/],
  [['--dso', ''], '--dso', /empty/],
  // Addresses: family, syntax.
  [['-l', '::1'], '-l', /not an IPv4 address; give it with -6/],
  [['-6', '192.0.2.1'], '-6', /not an IPv6 address; give it with -l/],
  [['-6', '[::1]'], '-6', /without brackets/],
  [['-l', ''], '-l', /empty/],
  [['-l', '1.2.3.4:5'], '-l', /neither a numeric IPv4 address nor a host name/],
  [['-l', 'bad name'], '-l', /neither/],
  [['--no_resolve', '-l', 'media.example.com'], '-l', /--no_resolve/],
  [['--no_resolve', '-6', 'v6@localhost', '-l', '1.2.3.4'], '-6', /--no_resolve/],
  // Labels.
  [['-l', '192.0.2.1', '-l', '192.0.2.2'], '-l', /label is missing/],
  [['-l', '192.0.2.1', '-6', '2001:db8::1'], '-6', /label is missing/],
  [['-6', '2001:db8::1', '-l', '192.0.2.1'], '-l', /label is missing/],
  [['-l', 'a@192.0.2.1', '-l', 'a@192.0.2.2'], '-l', /label "a" is used twice/],
  [['-l', 'a@192.0.2.1', '-6', 'a@::1'], '-6', /label "a" is used twice/],
  [['-l', '@192.0.2.1'], '-l', /label .* empty/],
  [['-l', '192.0.2.1=', '-l', 'x@192.0.2.2'], '-l', /advertised .* empty/],
  [
    ['-l', '192.0.2.1', '-l', 'x@192.0.2.2/192.0.2.3'],
    '-l',
    /only the first -l address can have the bridge form/,
  ],
  // Bridge mode.
  [['-l', '10.0.0.1/'], '-l', /empty/],
  [['-l', '/192.0.2.1'], '-l/-6', /exactly two addresses/],
  [['-6', '/2001:db8::1'], '-l/-6', /exactly two addresses/],
  [['-l', '10.0.0.1/192.0.2.1', '-6', '2001:db8::1'], '-l/-6', /exactly two addresses/],
  [['-l', '10.0.0.1/192.0.2.1', '-6', 'v6@2001:db8::1'], '-l/-6', /exactly two addresses/],
  [['-l', '10.0.0.1/192.0.2.1', '-6', 'fd00::1/2001:db8::1'], '-l/-6', /external .* both/],
  [['-l', 'lab@10.0.0.1/192.0.2.1'], '-l', /cannot have a label/],
  [['-l', '10.0.0.1/192.0.2.1=203.0.113.1'], '-l', /cannot have an advertised address/],
  [['-l', '10.0.0.1', '-6', 'v6@/2001:db8::1'], '-6', /cannot have a label/],
  [['-l', '10.0.0.1/192.0.2.1', '-l', '192.0.2.7'], '-l', /label is missing/],
  [['-l', '10.0.0.1/192.0.2.1', '-A', '10.9.9.9'], '-A', /two advertised addresses/],
  [['-A', ''], '-A', /first advertised address is empty/],
  [['-A', '/x'], '-A', /first advertised address is empty/],
  [['-A', 'x/'], '-A', /second advertised address is empty/],
  [
    Array.from({ length: 17 }, (_, i) => ['-l', `l${String(i)}@10.0.0.${String(i + 1)}`]).flat(),
    '-l/-6',
    /at most 16/,
  ],
];

for (const [argv, flag, message] of errorCases) {
  t.test(`buildConfig(${argv.join(' ')}) fails on ${flag}`, async (t) => {
    const errs = errors(argv);
    t.ok(
      errs.some((e) => e.flag === flag && message.test(e.message)),
      `an error on ${flag} matching ${String(message)}`,
      { found: errs },
    );
  });
}

t.test('buildConfig() reports every error at once', async (t) => {
  const errs = errors(['-S', '/s', '-m', '0', '-T', '0', '-d', 'nope']);
  t.same(errs.map((e) => e.flag).sort(), ['-S', '-T', '-d', '-m']);
});

t.test('needsResolution() flags host names only', async (t) => {
  t.equal(needsResolution({ address: 'media.example.com', family: 4 }), true);
  t.equal(needsResolution({ address: '192.0.2.1', family: 4 }), false);
  t.equal(needsResolution({ address: '::', family: 6 }), false);
});

/** Rows for the command-line layer (getopt rules, decimal integers). */
const parseOk: readonly (readonly [
  argv: readonly string[],
  want: Partial<Record<keyof RawOptions, unknown>>,
])[] = [
  [['-T60'], { ttl: 60 }],
  [['-T', '60'], { ttl: 60 }],
  [['-fT', '5'], { foreground: true, ttl: 5 }],
  [['-fT5'], { foreground: true, ttl: 5 }],
  [['-t', '-1'], { tos: -1 }],
  [['-T', '5', '-T', '6'], { ttl: 6 }],
  [['--nice', '-3'], { nice: -3 }],
  [['--nice=-3'], { nice: -3 }],
  [['--no_res'], { noResolve: true }],
  [['--no_redir'], { noRedirect: true }],
  [['--force'], { forceAsymmetric: true }],
  [['--overload_prot'], { overloadProt: true }],
  [['--overload_prot=99'], { overloadProt: true }],
  [['--overload_prot', '-f'], { overloadProt: true, foreground: true }],
  [['--config=/x.conf'], { configFile: '/x.conf' }],
  [['--dso', 'a', '--dso=b'], { dso: ['a', 'b'] }],
  [['-s', 'a', '-s', 'b'], { sockets: ['a', 'b'] }],
  [['-n', 'a', '-n', 'b'], { notify: ['a', 'b'] }],
  [
    ['-6', '::1', '-l', '1.2.3.4', '-6::2'],
    {
      listen: [
        { family: 6, value: '::1' },
        { family: 4, value: '1.2.3.4' },
        { family: 6, value: '::2' },
      ],
    },
  ],
  [['-2'], { sendTwice: true }],
  [['-v'], { info: 'capabilities' }],
  [['-V'], { info: 'version' }],
  [['-C'], { info: 'clock' }],
  [['-V', '-v'], { info: 'version' }],
  [['-fv', '-x', 'extra'], { info: 'capabilities', foreground: true }],
  [['-vT'], { info: 'capabilities' }],
  [['extra', '-v'], { info: 'capabilities' }],
];

for (const [argv, want] of parseOk) {
  t.test(`parseOptions(${argv.join(' ')})`, async (t) => {
    const o = raw(argv);
    for (const [key, value] of Object.entries(want)) t.same(o[key as keyof RawOptions], value, key);
  });
}

const parseErrors: readonly (readonly [argv: readonly string[], message: RegExp])[] = [
  [['-x'], /unknown option '-x'/],
  [['-h'], /unknown option '-h'/],
  [['--help'], /unknown option '--help'/],
  [['--bogus'], /unknown option '--bogus'/],
  [['extra'], /1 extra unhandled argument at/],
  [['-f', 'a', 'b'], /2 extra unhandled arguments/],
  [['--', '-f'], /1 extra unhandled argument/],
  [['--overload_prot', 'foo'], /1 extra unhandled argument/],
  [['-T', '0x10'], /'-T .*' argument '0x10' is invalid. It must be a decimal integer/],
  [['-T', '1e3'], /decimal integer/],
  [['-T', ''], /decimal integer/],
  [['-T', '6.5'], /decimal integer/],
  [['-m', ' 5'], /decimal integer/],
  [['-M', '99999999999999999999'], /too large/],
  [['-T'], /argument missing/],
  [['--nice'], /argument missing/],
  [['--workers', 'two'], /workers/],
  [['--no'], /ambiguous/],
  [['--no_resolve=1'], /doesn't allow an argument/],
  [['-x', '-v'], /unknown option '-x'/],
  [['-T', 'x', '-v'], /decimal integer/],
];

for (const [argv, message] of parseErrors) {
  t.test(`parseOptions(${argv.join(' ')}) fails`, async (t) => {
    const parsed = parseOptions(argv);
    t.equal(parsed.ok, false);
    if (!parsed.ok) t.match(parsed.message, message);
  });
}

t.test(
  'defaultWorkers(): one per core but the main thread, none on one core, at most 8',
  async (t) => {
    t.equal(defaultWorkers(1), 0);
    t.equal(defaultWorkers(2), 1);
    t.equal(defaultWorkers(8), 7);
    t.equal(defaultWorkers(64), 8, 'at most 8 unless --workers says more');
  },
);

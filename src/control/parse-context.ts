/**
 * The parser's context built from the configuration: which modifiers the local addresses allow,
 * their labels, and (with `--kamailio_notify`) the notify sockets that name a `-n` target. Done
 * once at start-up, so the parser reads plain data; dispatch adds the live local families.
 */
import type { Config } from '../base/config.ts';
import { type NotifyTargetSpec, parseNotifyTargets } from '../notify/targets.ts';
import type { ParseContext } from './modifiers.ts';

/**
 * Every NOTIFY_SOCKET text that `matchNotifyTarget()` (notify/targets.ts, docs/protocol.md 8.3)
 * matches to one of `specs`: each target's name, and the path of a unix target when it holds
 * no `:` (a socket with a `:` is only ever matched by name).
 */
export function notifySocketNames(specs: readonly NotifyTargetSpec[]): ReadonlySet<string> {
  const names = new Set<string>();
  for (const spec of specs) {
    names.add(spec.name);
    if (spec.kind === 'unix' && !spec.path.includes(':')) names.add(spec.path);
  }
  return names;
}

/** The parser's context for `config`; `localFamilies` is left to dispatch (it changes). */
export function parseContextOf(config: Config): ParseContext {
  const labels = new Set(config.addresses.flatMap((a) => (a.label === undefined ? [] : [a.label])));
  return {
    bridge: config.bridge,
    hasIpv6: config.addresses.some((a) => a.family === 6),
    defaultFamily: config.addresses[0]?.family ?? 4,
    labels,
    // buildConfig() refused bad -n values already; the ones that parse are the notifier's.
    ...(config.kamailioNotify && config.notifyTargets.length > 0
      ? {
          kamailioNotifySockets: notifySocketNames(
            parseNotifyTargets(config.notifyTargets, config.noResolve).specs,
          ),
        }
      : {}),
  };
}

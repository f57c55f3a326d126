/**
 * The parser's context built from the configuration: which modifiers the local addresses allow,
 * their labels, and (with `--kamailio_notify`) the `-n` targets a notify socket may name. Done
 * once at start-up, so the parser reads plain data; dispatch adds the live local families.
 */
import type { Config } from '../base/config.ts';
import { parseNotifyTargets } from '../notify/targets.ts';
import type { ParseContext } from './modifiers.ts';

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
          kamailioNotifyTargets: parseNotifyTargets(config.notifyTargets, config.noResolve).specs,
        }
      : {}),
  };
}

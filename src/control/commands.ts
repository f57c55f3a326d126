/**
 * The typed commands the parser produces, and the per-verb table the parser is driven by
 * (docs/protocol.md 3). Pure.
 */

import type { LocalChoice, RemoteSpec } from '../base/net.ts';

export type { LocalChoice, RemoteSpec } from '../base/net.ts';

/** The modifiers of U and L and of the L sub-command. */
export interface UpdateModifiers {
  /** `a` / `s`: leg facing the SDP owner; undefined = back to the default. */
  readonly asymmetric?: boolean;
  readonly weak: boolean;
  readonly ipv6: boolean;
  readonly local: LocalChoice;
  /** `z<ms>`: re-packetization interval. */
  readonly repacketizeMs?: number;
  /** `c<list>`: payload types of the SDP owner. */
  readonly codecs?: readonly number[];
  /** `n`: fresh port pair for the reply leg. */
  readonly newPorts: boolean;
}

/** Identifies a session the way every session command does: call-id and one or two tags. */
export interface SessionRef {
  readonly callId: string;
  readonly tag1: string;
  readonly tag2?: string;
}

export type SubCommand =
  | { readonly op: 'lookup'; readonly remote: RemoteSpec; readonly modifiers: UpdateModifiers }
  | { readonly op: 'set-ttl'; readonly reverse: boolean; readonly seconds: number }
  | { readonly op: 'set-tos'; readonly reverse: boolean; readonly tos: number }
  | { readonly op: 'delete'; readonly weak: boolean }
  | { readonly op: 'attach-recorder'; readonly source: SessionRef };

export type Command =
  | {
      readonly op: 'update' | 'lookup';
      readonly ref: SessionRef;
      readonly remote: RemoteSpec;
      readonly modifiers: UpdateModifiers;
      readonly notify?: { readonly socket: string; readonly tag: string };
      readonly subcommands: readonly SubCommand[];
    }
  | { readonly op: 'delete'; readonly ref: SessionRef; readonly weak: boolean }
  | {
      readonly op: 'play';
      readonly ref: SessionRef;
      readonly prompt: string;
      readonly codecs: string;
      readonly count: number;
    }
  | { readonly op: 'stop-play'; readonly ref: SessionRef }
  | { readonly op: 'record'; readonly ref: SessionRef; readonly single: boolean }
  | {
      readonly op: 'copy';
      readonly ref: SessionRef;
      readonly target: string;
      readonly single: boolean;
      readonly replyPort: boolean;
    }
  | { readonly op: 'stop-record'; readonly ref: SessionRef; readonly bothLegs: boolean }
  | {
      readonly op: 'query';
      readonly ref: SessionRef;
      readonly verbose: boolean;
      /** Q modifiers other than `v` are reported (E19) only once the session is found. */
      readonly badModifier: boolean;
      readonly names: readonly string[];
      readonly subcommands: readonly SubCommand[];
    }
  | { readonly op: 'stats'; readonly verbose: boolean; readonly names: readonly string[] }
  | { readonly op: 'info'; readonly load: boolean; readonly verbose: boolean }
  | { readonly op: 'version' }
  | { readonly op: 'version-feature'; readonly date: string }
  | { readonly op: 'delete-all' };

/** Static properties of one verb (the reference's fill_cmd_props()). */
export interface CommandSpec {
  readonly minArgs: number;
  readonly maxArgs: number;
  /** False: any modifier gives E2. */
  readonly modifiers: boolean;
  /** False: `&&` gives E3. */
  readonly subcommands: boolean;
  readonly hint: string;
}

/** Per-verb arity and permissions, keyed by the upper-case verb (VF is its own entry). */
export const COMMAND_SPECS = {
  U: {
    minArgs: 4,
    maxArgs: 7,
    modifiers: true,
    subcommands: true,
    hint: 'U[mods] callid addr port tag1 [tag2] [notify_socket notify_tag]',
  },
  L: {
    minArgs: 4,
    maxArgs: 5,
    modifiers: true,
    subcommands: true,
    hint: 'L[mods] callid addr port tag1 [tag2]',
  },
  D: {
    minArgs: 2,
    maxArgs: 3,
    modifiers: true,
    subcommands: false,
    hint: 'D[w] callid tag1 [tag2]',
  },
  P: {
    minArgs: 4,
    maxArgs: 5,
    modifiers: true,
    subcommands: false,
    hint: 'P[count] callid prompt codecs tag1 [tag2]',
  },
  S: { minArgs: 2, maxArgs: 3, modifiers: false, subcommands: false, hint: 'S callid tag1 [tag2]' },
  R: {
    minArgs: 2,
    maxArgs: 3,
    modifiers: true,
    subcommands: false,
    hint: 'R[s] callid tag1 [tag2]',
  },
  C: {
    minArgs: 3,
    maxArgs: 4,
    modifiers: true,
    subcommands: false,
    hint: 'C[s][p] callid target tag1 [tag2]',
  },
  N: {
    minArgs: 2,
    maxArgs: 3,
    modifiers: true,
    subcommands: false,
    hint: 'N[a] callid tag1 [tag2]',
  },
  Q: {
    minArgs: 2,
    maxArgs: 14,
    modifiers: true,
    subcommands: true,
    hint: 'Q[v] callid tag1 [tag2 [name ...]]',
  },
  G: { minArgs: 0, maxArgs: 29, modifiers: true, subcommands: false, hint: 'G[v] [name ...]' },
  I: { minArgs: 0, maxArgs: 0, modifiers: true, subcommands: false, hint: 'I[b][l]' },
  V: { minArgs: 0, maxArgs: 0, modifiers: false, subcommands: false, hint: 'V' },
  VF: { minArgs: 1, maxArgs: 1, modifiers: false, subcommands: false, hint: 'VF date' },
  X: { minArgs: 0, maxArgs: 0, modifiers: false, subcommands: false, hint: 'X' },
} as const satisfies Readonly<Record<string, CommandSpec>>;

/** A verb key of COMMAND_SPECS. */
export type Verb = keyof typeof COMMAND_SPECS;

/**
 * Playback (P) behind the session manager's PlaybackService, loaded on first use so that a start
 * neither loads the player nor node:crypto.
 */
import type { GlobalStats } from '../util/stats.ts';
import type { PromptSource } from './prompts.ts';
import type {
  PlaybackHooks,
  PlaybackInfo,
  PlaybackScheduler,
  PlaybackService,
  PlayTarget,
} from './scheduler.ts';

/**
 * Playback (P), loaded on the first P: neither the player nor node:crypto (random SSRCs) is
 * needed to start and answer the first commands. Every P begins with findPrompt(), which loads
 * it; start() comes only after that, and stop() has nothing to stop before.
 */
export class LazyPlayback implements PlaybackService {
  readonly #stats: GlobalStats;
  readonly #now: () => number;
  #scheduler: PlaybackScheduler | undefined;
  #loading: Promise<PlaybackScheduler> | undefined;
  #closed = false;

  constructor(stats: GlobalStats, now: () => number) {
    this.#stats = stats;
    this.#now = now;
  }

  async findPrompt(
    name: string,
    payloadTypes: readonly number[],
    packetMs: number,
  ): Promise<PromptSource | undefined> {
    const scheduler = await this.#load();
    return scheduler.findPrompt(name, payloadTypes, packetMs);
  }

  start(
    target: PlayTarget,
    prompt: PromptSource,
    count: number,
    hooks: PlaybackHooks,
  ): PlaybackInfo {
    if (this.#scheduler === undefined) {
      throw new Error('playback started before a prompt was found');
    }
    return this.#scheduler.start(target, prompt, count, hooks);
  }

  stop(target: PlayTarget): boolean {
    return this.#scheduler?.stop(target) ?? false;
  }

  close(): void {
    this.#closed = true;
    this.#scheduler?.close();
  }

  #load(): Promise<PlaybackScheduler> {
    this.#loading ??= Promise.all([import('./scheduler.ts'), import('./prompts.ts')]).then(
      ([{ PlaybackScheduler }, { PromptCache }]) => {
        const scheduler = new PlaybackScheduler({
          prompts: new PromptCache(),
          stats: this.#stats,
          now: this.#now,
        });
        // Closed while loading: what it would play is stopped at once.
        if (this.#closed) scheduler.close();
        this.#scheduler = scheduler;
        return scheduler;
      },
    );
    return this.#loading;
  }
}

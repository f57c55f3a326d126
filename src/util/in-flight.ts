/** Counts operations under way and lets callers wait until none is (a close, a flush). */
export class InFlight {
  #count = 0;
  #waiting: (() => void)[] = [];

  /** One more operation under way. */
  begin(): void {
    this.#count += 1;
  }

  /** One operation finished; when it was the last, everyone waiting goes on. */
  end(): void {
    if (this.#count > 0) this.#count -= 1;
    if (this.#count === 0) this.#release();
  }

  /** Resolves once no operation is under way (at once when none is). */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
    });
  }

  /** Gives up on the operations under way: whoever waits goes on now. */
  abandon(): void {
    this.#count = 0;
    this.#release();
  }

  #release(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
  }
}

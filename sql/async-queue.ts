/**
 * A bounded queue between a producer that pushes synchronously (COPY data
 * arriving from a socket) and an async consumer (the engine).
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private ended = false;
  private failure: { reason: unknown } | undefined;
  private wakeConsumer: (() => void) | undefined;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly capacity: number) {}

  get full(): boolean {
    return this.items.length >= this.capacity;
  }

  push(item: T): void {
    if (this.failure) return;
    this.items.push(item);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(reason: unknown): void {
    this.failure ??= { reason };
    this.items.length = 0;
    this.wake();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  get failed(): { reason: unknown } | undefined {
    return this.failure;
  }

  drained(): Promise<void> {
    if (!this.full || this.failure) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private wake(): void {
    const wake = this.wakeConsumer;
    this.wakeConsumer = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.failure) throw this.failure.reason;
      const item = this.items.shift();
      if (item !== undefined) {
        if (!this.full) {
          const waiters = this.drainWaiters;
          this.drainWaiters = [];
          for (const w of waiters) w();
        }
        yield item;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
    }
  }
}

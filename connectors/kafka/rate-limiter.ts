/**
 * A Kafka source's rate limit (pipeline_kafka.set_rate_limit): token buckets
 * of messages and of bytes per second, each holding at most one second's
 * worth, so a source that was idle bursts for a second at most.
 */
export interface RateLimit {
  messagesPerSecond: number | null;
  bytesPerSecond: number | null;
}

export class RateLimiter {
  private messages: number;
  private bytes: number;
  private last: number;

  constructor(
    readonly limit: RateLimit,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.messages = limit.messagesPerSecond ?? 0;
    this.bytes = limit.bytesPerSecond ?? 0;
    this.last = now();
  }

  /** The most messages one step should take, so that no wait is much longer than a second. */
  get stepMessages(): number {
    return Math.max(1, Math.floor(this.limit.messagesPerSecond ?? Number.MAX_SAFE_INTEGER));
  }

  /** How many of the messages (their sizes, from `from` on) make one step: a second's worth of messages and of bytes, at least one. */
  stepLength(sizes: readonly number[], from: number): number {
    const maxBytes = this.limit.bytesPerSecond ?? Number.POSITIVE_INFINITY;
    const end = Math.min(sizes.length, from + this.stepMessages);
    let bytes = 0;
    let i = from;
    while (i < end && (i === from || bytes + sizes[i] <= maxBytes)) bytes += sizes[i++];
    return i - from;
  }

  /**
   * Takes `count` messages of `size` bytes; returns how long (ms) to wait
   * before they may go. The buckets may go below zero: the wait pays it back.
   */
  take(count: number, size: number): number {
    this.refill();
    this.messages -= count;
    this.bytes -= size;
    const waits = [
      this.limit.messagesPerSecond ? (-this.messages / this.limit.messagesPerSecond) * 1000 : 0,
      this.limit.bytesPerSecond ? (-this.bytes / this.limit.bytesPerSecond) * 1000 : 0,
    ];
    return Math.max(0, ...waits);
  }

  private refill(): void {
    const now = this.now();
    const seconds = (now - this.last) / 1000;
    this.last = now;
    const { messagesPerSecond, bytesPerSecond } = this.limit;
    if (messagesPerSecond) this.messages = Math.min(messagesPerSecond, this.messages + seconds * messagesPerSecond);
    if (bytesPerSecond) this.bytes = Math.min(bytesPerSecond, this.bytes + seconds * bytesPerSecond);
  }
}

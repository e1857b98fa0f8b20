import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../connectors/kafka/rate-limiter.ts';

describe('a Kafka source rate limiter', () => {
  it('lets one second of messages through at once, then makes each step wait for its share', () => {
    let now = 0;
    const limiter = new RateLimiter({ messagesPerSecond: 100, bytesPerSecond: null }, () => now);
    expect(limiter.stepMessages).toBe(100);
    expect(limiter.take(100, 0)).toBe(0);
    expect(limiter.take(50, 0)).toBe(500);
    now += 500;
    // The wait paid for those 50; the next 100 need another second.
    expect(limiter.take(100, 0)).toBe(1000);
    now += 1000;
    // Over a long run the rate is the limit: 10 s of steps of 100.
    let waited = 0;
    for (let i = 0; i < 10; i++) {
      const wait = limiter.take(100, 0);
      waited += wait;
      now += wait;
    }
    expect(waited).toBeCloseTo(10_000, 6);
  });

  it('limits bytes too, the tighter of the two deciding', () => {
    let now = 0;
    const limiter = new RateLimiter({ messagesPerSecond: 1000, bytesPerSecond: 10_000 }, () => now);
    expect(limiter.take(10, 10_000)).toBe(0);
    expect(limiter.take(10, 5_000)).toBe(500);
    now += 10_000;
    // Idle time refills at most one second's worth.
    expect(limiter.take(10, 10_000)).toBe(0);
    expect(limiter.take(1, 1_000)).toBe(100);
  });

  it('cuts a batch into steps of a second of messages and of bytes, at least one message each', () => {
    const bytesOnly = new RateLimiter({ messagesPerSecond: null, bytesPerSecond: 10 });
    expect(bytesOnly.stepLength([4, 4, 4, 4], 0)).toBe(2);
    expect(bytesOnly.stepLength([4, 4, 4, 4], 2)).toBe(2);
    expect(bytesOnly.stepLength([50, 1], 0)).toBe(1);
    const both = new RateLimiter({ messagesPerSecond: 3, bytesPerSecond: 1000 });
    expect(both.stepLength([1, 1, 1, 1, 1], 0)).toBe(3);
    expect(both.stepLength([1, 1, 1, 1, 1], 3)).toBe(2);
  });
});

/**
 * Group commit: callers submit items and wait; items submitted while a commit
 * runs are committed together by the next one. One commit runs at a time.
 *
 * An idle group waits for the current turn of the event loop to end before
 * committing, so the items a client hands over together (one fetch response
 * holds several partitions, delivered one callback after another) share the
 * first transaction instead of the first item going alone.
 */
export class GroupCommit<T> {
  private waiting: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private running = false;

  constructor(private readonly commit: (items: T[]) => Promise<void>) {}

  submit(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length) {
        const group = this.waiting;
        this.waiting = [];
        try {
          await this.commit(group.map((w) => w.item));
          for (const w of group) w.resolve();
        } catch (err) {
          for (const w of group) w.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

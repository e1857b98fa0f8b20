/**
 * Group commit: callers submit items and wait; items submitted while a commit
 * runs are committed together by the next one. One commit runs at a time.
 */
export class GroupCommit<T> {
  private waiting: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private running = false;

  constructor(private readonly commit: (items: T[]) => Promise<void>) {}

  submit(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
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

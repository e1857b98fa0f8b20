import type { KafkaMessage } from './message-decoder.ts';

export type BatchHandler = (partition: number, messages: KafkaMessage[], highWatermark: bigint) => Promise<void>;

interface Batch {
  messages: KafkaMessage[];
  high: bigint;
}

/** One partition: the batch being delivered, and at most one waiting behind it. */
interface Slot {
  delivering: Promise<void> | undefined;
  queued: Batch | undefined;
  /** Offers waiting for the queue place to free up. */
  waiting: (() => void)[];
}

/**
 * Hands each partition's batches to the source one at a time and in order,
 * without making the client's fetch loop wait for the store: while a batch
 * is being applied, the next one is fetched and waits behind it (one per
 * partition, which bounds the memory), so the round trip to the broker and
 * the decoding overlap the transaction, and the batches of all partitions
 * reach the source's group commit together whatever the client's own
 * concurrency.
 *
 * A batch that fails to be delivered (the source is stopping, or something
 * unexpected) stops the handover: the client has already fetched past it, so
 * the consumer must restart from the offsets in the store (`onFailure`).
 */
export class Handover {
  private readonly slots = new Map<number, Slot>();
  private failure: Error | undefined;
  private stopped = false;

  constructor(
    private readonly deliver: BatchHandler,
    private readonly onFailure: (err: Error) => void,
    /** Called when a partition can take a batch again. */
    private readonly onRoom: () => void = () => undefined,
  ) {}

  /** Whether a batch of this partition would be taken without waiting. */
  hasRoom(partition: number): boolean {
    return this.slots.get(partition)?.queued === undefined;
  }

  /** Resolves once the batch is being delivered or is next in line; rejects after a failure. */
  async offer(partition: number, messages: KafkaMessage[], high: bigint): Promise<void> {
    const slot = this.slot(partition);
    while (slot.queued && !this.failure && !this.stopped) await new Promise<void>((resolve) => slot.waiting.push(resolve));
    if (this.failure) throw this.failure;
    if (this.stopped) return;
    if (slot.delivering) slot.queued = { messages, high };
    else this.start(partition, slot, { messages, high });
  }

  /** Drops the waiting batches and resolves when the ones being delivered are done. */
  async stop(): Promise<void> {
    this.stopped = true;
    const slots = [...this.slots.values()];
    for (const slot of slots) {
      slot.queued = undefined;
      wake(slot);
    }
    await Promise.all(slots.map((s) => s.delivering));
  }

  private slot(partition: number): Slot {
    let slot = this.slots.get(partition);
    if (!slot) this.slots.set(partition, (slot = { delivering: undefined, queued: undefined, waiting: [] }));
    return slot;
  }

  private start(partition: number, slot: Slot, batch: Batch): void {
    slot.delivering = this.deliver(partition, batch.messages, batch.high).then(
      () => this.delivered(partition, slot),
      (err: unknown) => this.failed(slot, err),
    );
  }

  private delivered(partition: number, slot: Slot): void {
    slot.delivering = undefined;
    const next = slot.queued;
    slot.queued = undefined;
    if (next && !this.stopped && !this.failure) this.start(partition, slot, next);
    wake(slot);
    this.onRoom();
  }

  private failed(slot: Slot, err: unknown): void {
    slot.delivering = undefined;
    slot.queued = undefined;
    const first = !this.failure;
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    for (const s of this.slots.values()) wake(s);
    if (first && !this.stopped) this.onFailure(this.failure);
  }
}

function wake(slot: Slot): void {
  const waiting = slot.waiting;
  slot.waiting = [];
  for (const resolve of waiting) resolve();
}

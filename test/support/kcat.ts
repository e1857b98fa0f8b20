import { spawn } from 'node:child_process';

/**
 * kcat (Debian package "kcat") as the independent Kafka client of the tests:
 * what it reads is what any consumer of a topic would see.
 */
function run(args: string[], input: string | undefined, timeoutMs: number, as: 'buffer'): Promise<Buffer>;
function run(args: string[], input?: string, timeoutMs?: number): Promise<string>;
function run(args: string[], input?: string, timeoutMs = 30_000, as?: 'buffer'): Promise<string | Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new Error(`kcat is not installed (apt-get install kcat): ${err.message}`)));
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(chunks);
      if (code === 0) resolve(as === 'buffer' ? stdout : stdout.toString('utf8'));
      else reject(new Error(`kcat ${args.join(' ')} exited with ${code}: ${stderr}`));
    });
    child.stdin.end(input);
  });
}

/** Produces lines as messages; with `keyDelimiter`, each line is `key<delimiter>value`. */
export async function kcatProduce(brokers: string, topic: string, lines: string[], options: { keyDelimiter?: string; partitioner?: string } = {}): Promise<void> {
  const args = ['-P', '-b', brokers, '-t', topic];
  if (options.keyDelimiter) args.push('-K', options.keyDelimiter);
  if (options.partitioner) args.push('-X', `topic.partitioner=${options.partitioner}`);
  await run(args, lines.join('\n') + '\n');
}

export interface ConsumedMessage {
  partition: number;
  offset: number;
  /** null when the message has no key. */
  key: string | null;
  /** null for a tombstone. */
  value: string | null;
}

/** Everything a read-committed consumer sees in a topic now (from the beginning to the end of each partition). */
export async function kcatConsume(brokers: string, topic: string): Promise<ConsumedMessage[]> {
  // %K/%S are the byte lengths (-1 for null): keys and values are cut by length, so they may hold tabs or newlines.
  const out = await run(['-C', '-b', brokers, '-t', topic, '-o', 'beginning', '-e', '-q', '-X', 'isolation.level=read_committed', '-f', '%p %o %K %S %k%s\n'], undefined, 30_000, 'buffer');
  const messages: ConsumedMessage[] = [];
  let at = 0;
  while (at < out.length) {
    const header = /^(\d+) (\d+) (-?\d+) (-?\d+) /.exec(out.subarray(at, at + 80).toString('latin1'));
    if (!header) throw new Error(`unexpected kcat output at byte ${at}`);
    at += header[0].length;
    const [keyLength, valueLength] = [Number(header[3]), Number(header[4])];
    const take = (length: number) => {
      if (length < 0) return null;
      const text = out.subarray(at, at + length).toString('utf8');
      at += length;
      return text;
    };
    const key = take(keyLength);
    const value = take(valueLength);
    at += 1; // the newline
    messages.push({ partition: Number(header[1]), offset: Number(header[2]), key, value });
  }
  return messages;
}

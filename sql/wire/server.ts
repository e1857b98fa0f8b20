import net from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { SluiceService } from '../service.ts';
import { ClientSession, type SessionRegistry } from './session.ts';

/** The PostgreSQL protocol server: accepts connections and gives each a ClientSession. */
export class WireServer implements SessionRegistry {
  private readonly server: net.Server;
  private readonly sessions = new Map<number, ClientSession>();
  private readonly connections = new Map<net.Socket, ClientSession>();

  constructor(
    private readonly service: SluiceService,
    private readonly log: Logger,
    /** The server's certificate and key: clients asking for TLS (sslmode=require…) get it. */
    private readonly tls?: SecureContext,
  ) {
    this.server = net.createServer((socket) => {
      const session = new ClientSession(socket, this.service, this, this.log, this.tls);
      this.connections.set(socket, session);
      void session.finished.then(() => this.connections.delete(socket));
    });
  }

  listen(port: number, host: string): Promise<{ port: number; host: string }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address() as net.AddressInfo;
        resolve({ port: address.port, host: address.address });
      });
    });
  }

  register(session: ClientSession): void {
    this.sessions.set(session.processId, session);
  }

  unregister(session: ClientSession): void {
    this.sessions.delete(session.processId);
  }

  cancel(processId: number, secretKey: number): void {
    const session = this.sessions.get(processId);
    if (session && session.secretKey === (secretKey | 0)) session.cancel();
  }

  /** Stops accepting connections, closes the open ones and waits until each has given the store back. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sessions = [...this.connections.values()];
    for (const socket of this.connections.keys()) socket.destroy();
    await Promise.all(sessions.map((s) => s.finished));
    await closed;
  }
}

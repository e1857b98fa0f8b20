import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { SqlError } from '../../engine/errors.ts';

/** Codes of the AuthenticationRequest ('R') messages. */
const AuthRequest = {
  ok: 0,
  kerberosV5: 2,
  cleartextPassword: 3,
  md5Password: 5,
  gss: 7,
  sspi: 9,
  sasl: 10,
  saslContinue: 11,
  saslFinal: 12,
} as const;

const AuthState = {
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
} as const;

const SCRAM = 'SCRAM-SHA-256';
// The GS2 header for "no channel binding": Sluice talks to PostgreSQL without TLS.
const GS2_HEADER = 'n,,';

/** What the client does with one AuthenticationRequest. */
export type AuthStep = { done: true } | { done: false; reply?: Buffer };

/**
 * The client side of PostgreSQL's password authentication: cleartext, MD5
 * and SCRAM-SHA-256 (RFC 5802/7677, without channel binding). One instance
 * per connection attempt, since SCRAM keeps state between its messages.
 */
export class Authenticator {
  private scram: { clientFirstBare: string; nonce: string; serverSignature?: Buffer } | undefined;

  constructor(
    private readonly user: string,
    private readonly password: string | undefined,
    /** Where we connect, for error messages. */
    private readonly display: string,
  ) {}

  /** Answers the AuthenticationRequest whose body (after type and length) is `body`. */
  respond(body: Buffer): AuthStep {
    const code = body.readInt32BE(0);
    const data = body.subarray(4);
    switch (code) {
      case AuthRequest.ok:
        if (this.scram && !this.scram.serverSignature) throw this.failure(AuthState.invalidAuthorization, 'the server ended SCRAM authentication without proving it knows the password');
        return { done: true };
      case AuthRequest.cleartextPassword:
        return { done: false, reply: serialize.password(this.requirePassword()) };
      case AuthRequest.md5Password:
        return { done: false, reply: serialize.password(md5Password(this.user, this.requirePassword(), data.subarray(0, 4))) };
      case AuthRequest.sasl:
        return { done: false, reply: this.scramStart(saslMechanisms(data)) };
      case AuthRequest.saslContinue:
        return { done: false, reply: this.scramProof(data.toString('utf8')) };
      case AuthRequest.saslFinal:
        this.scramVerify(data.toString('utf8'));
        return { done: false };
      default:
        throw this.failure(AuthState.invalidAuthorization, `the server asks for ${methodName(code)} authentication, which Sluice does not support`, {
          hint: 'Allow scram-sha-256, md5, password or trust for this user and address in pg_hba.conf.',
        });
    }
  }

  private requirePassword(): string {
    if (this.password === undefined) {
      throw this.failure(AuthState.invalidPassword, `the server asks for a password for user "${this.user}", but none was given`, {
        hint: 'Put it in the URL (postgres://user:password@host:port/database) or in PGPASSWORD.',
      });
    }
    return this.password;
  }

  private scramStart(mechanisms: string[]): Buffer {
    if (!mechanisms.includes(SCRAM)) {
      throw this.failure(AuthState.invalidAuthorization, `the server offers SASL mechanisms ${mechanisms.join(', ')}, and Sluice supports only ${SCRAM} without TLS`);
    }
    this.requirePassword();
    const nonce = randomBytes(18).toString('base64');
    // PostgreSQL takes the user from the StartupMessage and ignores this one.
    const clientFirstBare = `n=*,r=${nonce}`;
    this.scram = { clientFirstBare, nonce };
    return serialize.sendSASLInitialResponseMessage(SCRAM, GS2_HEADER + clientFirstBare);
  }

  private scramProof(serverFirst: string): Buffer {
    const scram = this.scram;
    if (!scram) throw this.failure(AuthState.invalidAuthorization, 'unexpected SASL continuation from the server');
    const attributes = scramAttributes(serverFirst);
    const serverNonce = attributes.get('r');
    const salt = attributes.get('s');
    const iterations = Number(attributes.get('i'));
    if (!serverNonce?.startsWith(scram.nonce) || !salt || !Number.isInteger(iterations) || iterations < 1) {
      throw this.failure(AuthState.invalidAuthorization, 'malformed SCRAM challenge from the server');
    }
    const saltedPassword = pbkdf2Sync(saslPrepared(this.requirePassword()), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const clientFinalWithoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${serverNonce}`;
    const authMessage = `${scram.clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ clientSignature[i]));
    scram.serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    return serialize.sendSCRAMClientFinalMessage(`${clientFinalWithoutProof},p=${proof.toString('base64')}`);
  }

  /** The server proves it knew the password too, so a fake server cannot pretend authentication succeeded. */
  private scramVerify(serverFinal: string): void {
    const attributes = scramAttributes(serverFinal);
    const error = attributes.get('e');
    if (error) throw this.failure(AuthState.invalidPassword, `SCRAM authentication failed: ${error}`);
    const expected = this.scram?.serverSignature;
    const received = Buffer.from(attributes.get('v') ?? '', 'base64');
    if (!expected || received.length !== expected.length || !timingSafeEqual(received, expected)) {
      throw this.failure(AuthState.invalidAuthorization, 'the server\'s SCRAM signature is wrong (is it really the PostgreSQL you meant?)');
    }
  }

  private failure(code: string, reason: string, fields: { hint?: string } = {}): SqlError {
    return new SqlError(code, `could not authenticate to the serving store at ${this.display}: ${reason}`, {
      hint: fields.hint ?? 'Check the user and password in --postgres-url (SLUICE_POSTGRES_URL).',
      severity: 'FATAL',
    });
  }
}

/** PostgreSQL's MD5 scheme: "md5" + md5(md5(password + user) + salt), in hex. */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
}

export function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/**
 * SASLprep approximated by NFKC normalisation. PostgreSQL itself falls back
 * to the raw bytes when a password is not valid SASLprep input, so ASCII
 * passwords (the usual case) are unaffected either way.
 */
function saslPrepared(password: string): string {
  return password.normalize('NFKC');
}

function saslMechanisms(data: Buffer): string[] {
  return data.toString('utf8').split('\0').filter((name) => name.length > 0);
}

/** `r=…,s=…,i=…` → map; values may contain '=' (base64), so split on the first only. */
export function scramAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) attributes.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return attributes;
}

function methodName(code: number): string {
  switch (code) {
    case AuthRequest.kerberosV5:
      return 'Kerberos V5';
    case AuthRequest.gss:
      return 'GSSAPI';
    case AuthRequest.sspi:
      return 'SSPI';
    default:
      return `an unknown (code ${code})`;
  }
}

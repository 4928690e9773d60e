// Structured logs: JSON lines by default (for collectors), pretty when stdout is a
// terminal. Keys and tokens never reach a log line: the redaction list covers the
// header and query names clients use to send them.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Every place a credential can appear in a logged object. */
export const REDACTED_PATHS = [
  'token',
  'apikey',
  'access_token',
  'secret',
  'jwt',
  '*.token',
  '*.apikey',
  '*.access_token',
  '*.authorization',
  '*.secret',
  'req.headers.authorization',
  'req.headers.apikey',
  'headers.authorization',
  'headers.apikey',
];

const TOKEN_IN_TEXT = /((?:apikey|access_token|token)=)[^&\s"]+/gi;
const JWT_IN_TEXT = /eyJ[\w-]+\.[\w-]+\.[\w-]+/g;

/** Removes credentials from free text such as a request URL before it is logged. */
export function scrubSecrets(text: string): string {
  return text.replace(TOKEN_IN_TEXT, '$1[redacted]').replace(JWT_IN_TEXT, '[redacted-jwt]');
}

/** A connection URL without its password, for logs, /readyz and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return scrubSecrets(url);
  }
}

export interface LogOptions {
  level: string;
  /** Force pretty or JSON output; by default pretty only on a TTY. */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LogOptions): Logger {
  const options: LoggerOptions = {
    level: opts.level,
    base: { pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const pretty = opts.pretty ?? (!opts.destination && process.stdout.isTTY === true);
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

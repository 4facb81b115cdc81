import pino, { type Logger, type DestinationStream } from 'pino';
import { isoTime } from './iso-time.ts';

export type { Logger };

/** Field names shared by every component's logs; documented in docs/audit-log.md. */
export const LOG_FIELDS = {
  component: 'component',
  err: 'err',
} as const;

/** JSON logs on stderr by default, so that stdout stays free for audit records and command output. */
export function createLogger(component: string, options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    { level: options.level ?? 'info', base: { [LOG_FIELDS.component]: component }, timestamp: () => `,"time":"${isoTime(Date.now())}"` },
    options.destination ?? pino.destination(2),
  );
}

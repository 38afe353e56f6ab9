import pino, { type Logger } from 'pino';

/** JSON logs to stderr: stdout stays free for a plugin's protocol output. */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}

export type { Logger };

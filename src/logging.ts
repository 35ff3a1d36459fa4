import pino, { type Logger } from 'pino';
import type { Logger as TemporalLogger, LogLevel, LogMetadata } from '@temporalio/common';

/**
 * JSON logs for machines, pretty ones for a person at a terminal. Redaction is a second line of defence: secrets are
 * never put into log fields in the first place.
 */
export function createLogger(name = 'lifeboat'): Logger {
  const level = process.env.LOG_LEVEL ?? 'info';
  const pretty = process.stdout.isTTY && process.env.LOG_FORMAT !== 'json';
  return pino({
    name,
    level,
    redact: { paths: ['*.secretAccessKey', '*.privateKey', '*.key', '*.password', '*.token'], censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss' } } } : {}),
  });
}

/** Temporal's runtime and worker log through this adapter, so one stream carries everything. */
export function temporalLoggerFrom(logger: Logger): TemporalLogger {
  const at = (level: 'trace' | 'debug' | 'info' | 'warn' | 'error') => (message: string, meta?: LogMetadata) =>
    logger[level](meta ?? {}, message);
  const levels: Record<LogLevel, ReturnType<typeof at>> = {
    TRACE: at('trace'),
    DEBUG: at('debug'),
    INFO: at('info'),
    WARN: at('warn'),
    ERROR: at('error'),
  };
  return {
    log: (level: LogLevel, message: string, meta?: LogMetadata) => levels[level](message, meta),
    trace: levels.TRACE,
    debug: levels.DEBUG,
    info: levels.INFO,
    warn: levels.WARN,
    error: levels.ERROR,
  };
}

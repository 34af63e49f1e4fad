import { controlMarkers } from './init-script.ts';
import { tail } from '../common/text.ts';

/**
 * Kernel reports that fail a run. Matched only on printk lines (they carry the
 * `[    1.234567]` timestamp, CONFIG_PRINTK_TIME), so program output that happens to say
 * "WARNING:" does not count.
 */
const failurePatterns: readonly RegExp[] = [
  /BUG:/, // BUG: KASAN, BUG: sleeping function called, BUG: kernel NULL pointer dereference, watchdog: BUG: soft lockup
  /kernel BUG at /,
  /WARNING:/, // WARN_ON, and lockdep's "WARNING: possible circular locking dependency detected" etc.
  /\bOops\b/,
  /general protection fault/,
  /Kernel panic/,
  /possible circular locking/,
  /INFO: /, // lockdep "INFO: possible recursive locking", hung tasks, RCU stalls
  /KASAN/,
  /UBSAN:/,
  /Unable to handle kernel/,
];

const printkLine = /\[\s*\d+\.\d+\]\s?(.*)$/;

/** The first kernel failure report in the console, with a few lines of context, or null. */
export function detectKernelFailure(consoleText: string): string | null {
  const lines = consoleText.split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    const message = printkLine.exec(line)?.[1];
    if (message === undefined) continue;
    if (failurePatterns.some((p) => p.test(message))) {
      return lines.slice(index, index + 12).map((l) => l.replace(/\r$/, '')).join('\n');
    }
  }
  return null;
}

export interface ControlReport {
  /** The guest init reached the point of running the program. */
  ready: boolean;
  exitCode: number | null;
  /** The base64 tar of the results folder, when it arrived complete. */
  resultsTar: Buffer | null;
}

/** Parses what the guest init wrote to the control port (ttyS1). */
export function parseControl(text: string): ControlReport {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const exitLine = lines.find((l) => l.startsWith(`${controlMarkers.exit} `));
  const exitCode = exitLine ? Number(exitLine.slice(controlMarkers.exit.length + 1)) : null;
  const begin = lines.indexOf(controlMarkers.resultsBegin);
  const end = lines.indexOf(controlMarkers.resultsEnd);
  const resultsTar = begin >= 0 && end > begin ? Buffer.from(lines.slice(begin + 1, end).join(''), 'base64') : null;
  return {
    ready: lines.includes(controlMarkers.ready),
    exitCode: exitCode !== null && Number.isInteger(exitCode) ? exitCode : null,
    resultsTar,
  };
}

/** The last `count` lines of the console, for timeout and failure messages. */
export function consoleTail(consoleText: string, count = 25): string {
  return tail(consoleText.replace(/\r/g, ''), count);
}

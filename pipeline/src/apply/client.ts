import { connect, type Socket } from 'node:net';

/** One JSON line libwfpatch writes to its log and to the requesting control-socket client. */
export interface RuntimeEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** The events a request produced; the last one says how it ended. */
export interface ControlOutcome {
  readonly events: RuntimeEvent[];
  /** "done", "rejected" or "status"; "closed" if the process hung up without an outcome. */
  readonly outcome: string;
  readonly reason?: string;
}

/** The abstract unix socket libwfpatch listens on in process `pid`. */
export function controlSocketName(pid: number): string {
  return `\0wfpatch.${pid}`;
}

export class ControlError extends Error {
  constructor(message: string, readonly code: 'no-socket' | 'timeout' | 'protocol') {
    super(message);
    this.name = 'ControlError';
  }
}

const terminal = new Set(['done', 'rejected', 'status', 'inventory']);

/**
 * Sends one request line ("apply PATH", "next", "rollback", "status") to the runtime in process
 * `pid` and collects the JSON lines it answers with, until the terminal one. `onEvent` sees
 * each as it arrives (a local-mode patch can take as long as the slowest thread).
 */
export function controlRequest(
  pid: number,
  request: string,
  opts: { timeoutMs: number; onEvent?: (e: RuntimeEvent) => void },
): Promise<ControlOutcome> {
  return new Promise((resolve, reject) => {
    const events: RuntimeEvent[] = [];
    let buffered = '';
    let settled = false;
    const socket: Socket = connect({ path: controlSocketName(pid) });
    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) {
        reject(error);
        return;
      }
      const last = events.at(-1);
      const outcome = last && terminal.has(last.event) ? last.event : 'closed';
      resolve({ events, outcome, reason: typeof last?.reason === 'string' ? last.reason : undefined });
    };
    const timer = setTimeout(
      () => finish(new ControlError(`no outcome from process ${pid} within ${opts.timeoutMs / 1000} s`, 'timeout')),
      opts.timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${request}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim() === '') continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          finish(new ControlError(`process ${pid} sent a line that is not JSON: ${line.slice(0, 120)}`, 'protocol'));
          return;
        }
        const event = parsed as RuntimeEvent;
        events.push(event);
        opts.onEvent?.(event);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') {
        finish(new ControlError(`process ${pid} has no libwfpatch control socket (@wfpatch.${pid}): is it running, and linked with libwfpatch?`, 'no-socket'));
      } else finish(error);
    });
    socket.on('close', () => finish(null));
  });
}

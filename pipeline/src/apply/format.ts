import type { RuntimeEvent } from './client.ts';

const num = (v: unknown): string => (typeof v === 'number' ? (Math.round(v * 1000) / 1000).toString() : '?');

/** One human-readable line for a runtime event (wfbuild apply without --json). */
export function describeEvent(e: RuntimeEvent): string {
  switch (e.event) {
    case 'trigger':
      return `${e.action} ${e.patch ?? '(no patch)'} in ${e.mode} mode`;
    case 'patch_loaded':
      return `loaded: ${num(e.functions)} function(s), ${num(e.text_bytes)} bytes of code at ${e.at}, ${num(e.relocations)} relocations, ${num(e.plt_entries)} trampolines, ${num(e.got_slots)} GOT slots (${num(e.load_us)} µs)`;
    case 'generation_created':
      return `generation ${e.gen} created from ${e.from} (${num(e.create_us)} µs)`;
    case 'jumps_written': {
      const fns = Array.isArray(e.functions) ? e.functions.map((f: { name?: string }) => f.name).join(', ') : '';
      return `jumps written: ${fns}`;
    }
    case 'migration_pending':
      return `waiting for ${num(e.threads)} thread(s) to migrate to generation ${e.gen}`;
    case 'migrated':
      return `  ${e.thread} migrated after ${num(e.ms)} ms (${num(e.remaining)} left)`;
    case 'arrived':
      return `  ${e.thread} reached the barrier after ${num(e.ms)} ms (${num(e.remaining)} missing)`;
    case 'quiescence':
      return `global quiescence after ${num(e.ms)} ms`;
    case 'quiescence_timeout':
      return `no global quiescence after ${num(e.ms)} ms; missing: ${e.threads}`;
    case 'generation_deleted':
      return `generation ${e.gen} deleted${e.error ? ` (${e.error})` : ''}`;
    case 'jumps_removed':
      return `jumps removed: ${e.patch}`;
    case 'summary':
      return `summary: ${e.outcome}, ${num(e.migrated)} thread(s), slowest ${num(e.max_thread_ms)} ms, total ${num(e.total_ms)} ms`;
    case 'done':
      return `done: ${e.action} in ${num(e.ms)} ms (${num(e.depth)} patch(es) applied)`;
    case 'rejected':
      return `rejected: ${e.reason}`;
    case 'status':
      return `status: ${e.mode} mode, ${num(e.depth)} patch(es) applied${e.busy ? ', a transition is under way' : ''}`;
    default:
      return `${e.event}`;
  }
}

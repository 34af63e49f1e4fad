/**
 * Where a transition's time goes, from libwfpatch's log: for each transition the moments of its
 * phases relative to the trigger, then medians per mode and action. Pure: text in, figures out.
 *
 * Local apply:  trigger → patch loaded → generation created → migration pending (the patcher
 *               has migrated itself and written the jumps in the new generation; the kick goes
 *               out here) → each thread's migration → done.
 * Local rollback: trigger → pending (no load, no create) → migrations.
 * Global:       trigger → patch loaded (apply only) → every thread parked (quiescence) → jumps
 *               written and barrier released (done).
 */

export interface PhaseTimes {
  readonly action: 'apply' | 'rollback';
  readonly global: boolean;
  /** ms after the trigger; null when the phase does not exist (rollback: no load). */
  readonly loadedMs: number | null;
  readonly createdMs: number | null;
  /** Local: the kick; global: null. */
  readonly pendingMs: number | null;
  readonly firstThreadMs: number | null;
  readonly lastThreadMs: number | null;
  /** Global: all parked. */
  readonly quiescenceMs: number | null;
  readonly doneMs: number | null;
  readonly loadUs: number | null;
  readonly createUs: number | null;
}

type Line = Record<string, unknown>;

/** One PhaseTimes per finished transition (rejected ones are left out). */
export function transitionPhases(log: string): PhaseTimes[] {
  const out: PhaseTimes[] = [];
  let cur: { -readonly [K in keyof PhaseTimes]: PhaseTimes[K] } | null = null;
  let t0 = 0;
  let threads: number[] = [];
  const since = (line: Line): number | null => (typeof line.time === 'number' ? (line.time - t0) * 1000 : null);
  for (const raw of log.split('\n')) {
    if (!raw.startsWith('{')) continue;
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      continue;
    }
    const num = (k: string): number | null => (typeof line[k] === 'number' ? (line[k] as number) : null);
    switch (line.event) {
      case 'trigger':
        t0 = num('time') ?? 0;
        threads = [];
        cur = { action: line.action === 'rollback' ? 'rollback' : 'apply', global: line.mode === 'global', loadedMs: null, createdMs: null, pendingMs: null, firstThreadMs: null, lastThreadMs: null, quiescenceMs: null, doneMs: null, loadUs: null, createUs: null };
        break;
      case 'patch_loaded':
        if (cur) [cur.loadedMs, cur.loadUs] = [since(line), num('load_us')];
        break;
      case 'generation_created':
        if (cur) [cur.createdMs, cur.createUs] = [since(line), num('create_us')];
        break;
      case 'migration_pending':
        if (cur) cur.pendingMs = since(line);
        break;
      case 'migrated':
      case 'arrived':
        // `ms` is taken by the thread itself at its switch; the line is written later by the patcher.
        if (cur && num('ms') !== null) threads.push(num('ms')!);
        break;
      case 'quiescence':
        if (cur) cur.quiescenceMs = num('ms');
        break;
      case 'done':
        if (cur) {
          cur.doneMs = num('ms');
          cur.firstThreadMs = threads.length ? Math.min(...threads) : null;
          cur.lastThreadMs = threads.length ? Math.max(...threads) : null;
          out.push(cur);
        }
        cur = null;
        break;
      case 'rejected':
        cur = null;
        break;
      default:
        break;
    }
  }
  return out;
}

export interface PhaseMedians {
  readonly count: number;
  readonly loadedMs: number | null;
  readonly createdMs: number | null;
  readonly pendingMs: number | null;
  readonly firstThreadMs: number | null;
  readonly lastThreadMs: number | null;
  /** Local: from the kick (pending) to the last thread's migration, per transition. */
  readonly kickToLastMs: number | null;
  readonly quiescenceMs: number | null;
  readonly doneMs: number | null;
  /** The switch time as `wfbuild live` counts it: local last migration, global done. */
  readonly switchMs: number | null;
}

const median = (xs: readonly (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

/** Medians of each phase, per action. */
export function phaseMedians(phases: readonly PhaseTimes[]): { apply: PhaseMedians; rollback: PhaseMedians } {
  const of = (xs: readonly PhaseTimes[]): PhaseMedians => ({
    count: xs.length,
    loadedMs: median(xs.map((p) => p.loadedMs)),
    createdMs: median(xs.map((p) => p.createdMs)),
    pendingMs: median(xs.map((p) => p.pendingMs)),
    firstThreadMs: median(xs.map((p) => p.firstThreadMs)),
    lastThreadMs: median(xs.map((p) => p.lastThreadMs)),
    kickToLastMs: median(xs.map((p) => (p.pendingMs !== null && p.lastThreadMs !== null ? p.lastThreadMs - p.pendingMs : null))),
    quiescenceMs: median(xs.map((p) => p.quiescenceMs)),
    doneMs: median(xs.map((p) => p.doneMs)),
    switchMs: median(xs.map((p) => (p.global ? p.doneMs : p.lastThreadMs ?? p.doneMs))),
  });
  return { apply: of(phases.filter((p) => p.action === 'apply')), rollback: of(phases.filter((p) => p.action === 'rollback')) };
}

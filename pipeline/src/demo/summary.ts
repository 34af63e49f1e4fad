/** What kvload prints (corpus/demo/kvd/kvload.c). */
export interface LoadStats {
  requests: number;
  errors: number;
  leaked: number;
  refused: number;
  leakedAfterTrigger: number;
  triggerUs: number;
  lastLeakUs: number;
  firstRefusalUs: number;
  seconds: number;
  threads: number;
  connectErrors?: number;
  ioErrors?: number;
  badAnswers?: number;
}

/** One libwfpatch log line (JSON lines; see kpatch-fork/runtime/README.md). */
export type WfEvent = Record<string, unknown> & { event: string };

export interface DemoSummary {
  mode: string;
  outcome: string | null;
  generationCreateUs: number | null;
  patchLoadedBytes: number | null;
  jumps: string[];
  /** Per thread: milliseconds from the trigger to its migration (local) or arrival (global). */
  threadMs: number[];
  /** From the runtime's summary: threads taking part, and how many switched to the new code. */
  threads: number | null;
  switched: number | null;
  load: LoadStats;
  /** The patch is in force for every request that started after the last leaked answer. */
  fixedWithinMs: number | null;
  problems: string[];
}

export function parseEvents(jsonl: string): WfEvent[] {
  return jsonl
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as WfEvent);
}

const num = (value: unknown): number | null => (typeof value === 'number' ? value : null);

/** Reduces the guest's results to what the demo reports, and what went wrong. */
export function summarizeDemo(events: WfEvent[], load: LoadStats): DemoSummary {
  const find = (name: string): WfEvent | undefined => events.find((e) => e.event === name);
  const summary = find('summary');
  const created = find('generation_created');
  const loaded = find('patch_loaded');
  const jumpsEvent = find('jumps_written');
  const functions = Array.isArray(jumpsEvent?.functions) ? (jumpsEvent.functions as Record<string, unknown>[]) : [];
  const threadMs = events
    .filter((e) => e.event === 'migrated' || e.event === 'arrived')
    .map((e) => num(e.ms))
    .filter((ms): ms is number => ms !== null);
  const problems: string[] = [];
  const outcome = typeof summary?.outcome === 'string' ? summary.outcome : null;
  if (outcome !== 'applied') problems.push(`the patch was not applied (outcome: ${outcome ?? 'none logged'})`);
  for (const rejected of events.filter((e) => e.event === 'rejected')) problems.push(`rejected: ${String(rejected.reason ?? rejected.error ?? 'no reason logged')}`);
  if (load.errors > 0) {
    const kinds = `connect ${load.connectErrors ?? '?'}, i/o ${load.ioErrors ?? '?'}, unexpected answers ${load.badAnswers ?? '?'}`;
    problems.push(`${load.errors} requests failed (${kinds})`);
  }
  if (summary && num(summary.threads) !== num(summary.migrated)) {
    problems.push(`only ${String(summary.migrated)} of ${String(summary.threads)} threads switched`);
  }
  if (load.refused === 0) problems.push('no request saw the fixed behaviour');
  if (load.leaked === 0) problems.push('no request saw the bug before the patch (the demo shows nothing)');
  const fixedWithinMs = load.refused > 0 && load.triggerUs >= 0 ? Math.max(0, (load.lastLeakUs - load.triggerUs) / 1000) : null;
  return {
    mode: typeof summary?.mode === 'string' ? summary.mode : String(events.find((e) => e.event === 'init')?.mode ?? 'unknown'),
    outcome,
    generationCreateUs: num(created?.create_us),
    patchLoadedBytes: num(loaded?.text_bytes),
    jumps: functions.map((f) => String(f.name)),
    threadMs,
    threads: num(summary?.threads),
    switched: num(summary?.migrated),
    load,
    fixedWithinMs,
    problems,
  };
}

export function renderSummary(s: DemoSummary): string {
  const ms = (v: number): string => v.toFixed(2);
  const lines = [
    `mode: ${s.mode}; outcome: ${s.outcome ?? '-'}`,
    `patched functions: ${s.jumps.join(', ') || '-'}`,
    s.generationCreateUs !== null ? `generation created in ${s.generationCreateUs.toFixed(0)} µs (guest, TCG)` : null,
    `threads switched: ${s.switched ?? '?'} of ${s.threads ?? '?'}; trigger → switch ms: ${s.threadMs.map(ms).join(', ') || '-'}`,
    `requests: ${s.load.requests} from ${s.load.threads} clients over ${s.load.seconds} s; failed: ${s.load.errors}`,
    `bug answers: ${s.load.leaked} (${s.load.leakedAfterTrigger} after the trigger); fixed answers: ${s.load.refused}`,
    s.fixedWithinMs !== null ? `every answer fixed from ${ms(s.fixedWithinMs)} ms after the trigger on, with no restart` : null,
    ...s.problems.map((p) => `PROBLEM: ${p}`),
  ];
  return lines.filter((l): l is string => l !== null).join('\n');
}

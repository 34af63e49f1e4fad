/** `wfbuild status` as text (pure). */
import type { ProcessStatus, ThreadState } from './collect.ts';

function cves(c: readonly string[]): string {
  return c.length > 0 ? ` (${c.join(', ')})` : '';
}

function when(epoch: number | null): string {
  return epoch === null ? 'time unknown' : new Date(epoch * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

function threadGroups(threads: readonly ThreadState[]): string[] {
  const byGen = new Map<string, ThreadState[]>();
  for (const t of threads) {
    const key = t.tracked ? `generation ${t.gen}` : 'untracked (stay in the generation they were started in)';
    byGen.set(key, [...(byGen.get(key) ?? []), t]);
  }
  return [...byGen.entries()].map(([k, ts]) => `    ${k}: ${ts.map((t) => `${t.tid} ${t.name}`).join(', ')}`);
}

export function formatStatus(s: ProcessStatus): string {
  const lines = [`pid ${s.pid}  ${s.exe ?? '?'}  build-id ${s.buildId ?? '?'}  ${s.mode} mode${s.busy ? '  (a transition is under way)' : ''}`];
  if (s.applied.length === 0) lines.push('  applied: none');
  for (const a of s.applied) {
    lines.push(`  applied      ${a.name}${cves(a.cves)}  ${when(a.time)}  ${a.mode}${a.gen !== null ? `, generation ${a.gen}` : ''}`);
  }
  for (const p of s.notApplied) lines.push(`  not applied  ${p.name}${cves(p.cves)}: ${p.why}`);
  if (s.mode === 'local') {
    lines.push(`  generations: ${s.generations.join(', ')} (newest ${s.currentGen})`);
    lines.push(
      s.behind.length === 0
        ? `  threads: every tracked thread runs in generation ${s.currentGen}`
        : `  threads: ${s.behind.length} tracked thread(s) still run older code: ${s.behind.map((t) => `${t.tid} ${t.name} (generation ${t.gen})`).join(', ')}`,
    );
  } else lines.push('  threads (global mode: one code for all):');
  lines.push(...threadGroups(s.threads));
  return lines.join('\n');
}

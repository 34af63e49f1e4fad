/**
 * "Live-patchable with new data": the column next to the paper's "text-only". A unit counts
 * when it is kpatch-able, or when the only thing that kept it from being text-only is new
 * variables create-diff-object carried in the patch (--new-data, kpatch-fork/README.md "New
 * data"). Changes to existing data, new objects, struct layouts and unpatchable code keep it
 * out. Pure: tested in test/corpus-table.test.ts.
 */
import type { ObjectReport, Outcome } from '../report/types.ts';

function carried(verdict: unknown): boolean {
  return (verdict as { liveWithNewData?: unknown } | null)?.liveWithNewData === true;
}

/** Names of the new variables the patch objects carry, for the reason line. */
export function carriedVariables(objects: readonly ObjectReport[]): string[] {
  const names = new Set<string>();
  for (const o of objects) {
    for (const v of o.verdicts) {
      const list = (v.verdict as { newDataCarried?: { name?: unknown }[] } | null)?.newDataCarried ?? [];
      for (const d of list) if (typeof d.name === 'string') names.add(d.name);
    }
  }
  return [...names].sort();
}

export function liveWithNewData(outcome: Outcome, objects: readonly ObjectReport[]): boolean {
  if (outcome === 'kpatchable') return true;
  if (outcome !== 'not-text-only') return false;
  let any = false;
  for (const o of objects) {
    if ((o.layoutChanges?.length ?? 0) > 0) return false;
    for (const v of o.verdicts) {
      if (v.outcome === 'patch' || v.outcome === 'nothing') continue;
      if (v.outcome === 'not-text-only' && carried(v.verdict)) {
        any = true;
        continue;
      }
      return false;
    }
  }
  return any;
}

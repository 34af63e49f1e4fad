/** Which units a corpus run classifies, and on which base trees (corpus/README.md). */
import type { Manifest } from './manifest.ts';
import type { CorpusUnit } from './units.ts';

export type View = 'corpus' | 'update' | 'series';

/**
 * Which units a run classifies (corpus/README.md): 'series' — every unit of the series walk;
 * 'update' — the units a bookworm update added; 'corpus' (default) — the update units where the
 * package has any, else its series walk (Debian took a new upstream release, or no update).
 */
export function selectUnits(manifest: Manifest, view: View): CorpusUnit[] {
  const update = manifest.units.filter((u) => u.views.includes('update'));
  if (view === 'series') return [...manifest.units];
  if (view === 'update') return update;
  return update.length > 0 ? update : [...manifest.units];
}

/**
 * Where a unit is applied. Series walk: on top of every patch before it. Update view: every
 * update unit on the same base (the tree before the first update unit — the version users run),
 * as if each fix had arrived alone, so the package needs one original build; a unit that does
 * not apply alone there falls back to its series position (the caller checks).
 */
export function preferredBase(unit: CorpusUnit, selected: readonly CorpusUnit[], usesUpdateView: boolean): number {
  if (!usesUpdateView) return unit.start;
  return Math.min(...selected.map((u) => u.start));
}

/** A base tree a unit can be applied to (see corpus/README.md, "Where a unit is applied"). */
export type Placement = { kind: 'series-prefix'; at: number } | { kind: 'series-without-unit' };

/**
 * The bases to try, in order: the preferred one (shared base in the update view, the unit's
 * series position otherwise), then its series position, then last on the whole series without
 * it — for a unit before a patch Debian's build needs (apache2's layout comes from
 * fhs_compliance.patch, so no tree before it builds).
 */
export function placementsFor(unit: CorpusUnit, preferred: number, seriesLength: number): Placement[] {
  const list: Placement[] = [{ kind: 'series-prefix', at: preferred }];
  if (preferred !== unit.start) list.push({ kind: 'series-prefix', at: unit.start });
  if (unit.start + unit.patches.length < seriesLength) list.push({ kind: 'series-without-unit' });
  return list;
}

export function describePlacement(p: Placement): string {
  return p.kind === 'series-prefix' ? `applied after ${p.at} series patches` : 'applied last, on the whole series without it';
}

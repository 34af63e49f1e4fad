import type { Outcome, Reason, ObjectReport } from '../report/types.ts';

export interface OutcomeInput {
  /** Triage found compiled files among the touched ones. */
  readonly touchesCompiledCode: boolean;
  readonly objects: readonly ObjectReport[];
  /** Reasons gathered so far (create-diff-object's, bundle link failures). */
  readonly reasons: readonly Reason[];
  /** Affected binaries for which no loadable bundle came out. */
  readonly unbundled: readonly string[];
}

export interface Classification {
  readonly outcome: Outcome;
  readonly textOnly: boolean | null;
  readonly kpatchable: boolean | null;
}

/**
 * The research prototype's definitions: text-only — the patch changes only code (no global
 * data, no data layout); kpatch-able — a loadable bundle exists for every affected binary.
 * A patch whose compiled objects do not change at all is neither: there is nothing to patch.
 */
export function classifyOutcome(input: OutcomeInput): Classification {
  const verdicts = input.objects.flatMap((o) => o.verdicts);
  const changing = verdicts.filter((v) => v.outcome !== 'nothing');
  // A struct laid out differently changes data the process holds, even where no function's
  // code changed (a member appended that this object never touches).
  if (input.touchesCompiledCode && input.objects.some((o) => (o.layoutChanges?.length ?? 0) > 0)) {
    return { outcome: 'not-text-only', textOnly: false, kpatchable: false };
  }
  if (!input.touchesCompiledCode || changing.length === 0) {
    return { outcome: 'no-compiled-code', textOnly: null, kpatchable: null };
  }
  if (changing.some((v) => v.outcome === 'not-text-only' || v.outcome === 'new-object')) {
    return { outcome: 'not-text-only', textOnly: false, kpatchable: false };
  }
  const allPatched = changing.every((v) => v.outcome === 'patch') && input.unbundled.length === 0;
  return allPatched
    ? { outcome: 'kpatchable', textOnly: true, kpatchable: true }
    : // create-diff-object failing on an object (exit 1/2) leaves "text-only?" unanswered.
      { outcome: 'not-kpatchable', textOnly: changing.some((v) => v.outcome === 'error' || v.outcome === 'unmapped') ? null : true, kpatchable: false };
}

/**
 * New functions one patch object defines and another calls. A patch may add a function in one
 * file and call it from another (knot-resolver: the new session_tcp_penalize() in session.c,
 * called from io.c), or change a function's parameters so that its mangled name is new and every
 * caller in other files calls the new name (nodejs CVE-2025-23166: `DeriveBits` gains an
 * `Environment*`). The caller's object alone has a reference the binary cannot resolve, but the
 * bundle for that binary defines it. Used by the full pipeline's object-diff stage and by the
 * corpus' confirmation against a build, so both resolve the same way.
 */
import { judgeObjectPair, type Judgement, type ObjectPair } from './judge.ts';

export interface Judged {
  readonly pair: ObjectPair;
  judged: Judgement;
  /** The `provided` names it was last judged with, per target. */
  given: Map<string, readonly string[]>;
}

interface VerdictLite {
  readonly unresolved?: unknown;
  readonly newFunctions?: readonly { readonly name?: unknown; readonly binding?: unknown }[];
}

/** New global functions an object's patch for `binary` defines (other objects of the bundle may call them). */
function definesFor(j: Judged, binary: string): string[] {
  const v = j.judged.report.verdicts.find((x) => x.binary === binary && x.outcome === 'patch')?.verdict as VerdictLite | undefined;
  return (v?.newFunctions ?? []).filter((f) => f.binding === 'global' && typeof f.name === 'string').map((f) => f.name as string);
}

function unresolvedFor(j: Judged, binary: string): string[] {
  const v = j.judged.report.verdicts.find((x) => x.binary === binary && x.outcome === 'not-patchable')?.verdict as VerdictLite | undefined;
  return Array.isArray(v?.unresolved) ? v.unresolved.filter((x): x is string => typeof x === 'string') : [];
}

/** Judges a pair for the first time (nothing provided yet). */
export async function judgeFirst(pair: ObjectPair): Promise<Judged> {
  return { pair, judged: await judgeObjectPair(pair), given: new Map() };
}

/**
 * Objects whose references another object's patch defines are judged again with those names
 * as `--provided`, until nothing changes (a re-judged object may itself start providing).
 */
export async function resolveAcrossObjects(all: Judged[]): Promise<void> {
  for (let round = 0; round < 4; round++) {
    let changed = false;
    for (const j of all) {
      // Per target: the names it could not resolve that another object's patch defines.
      const given = new Map(
        j.pair.targets.map((t) => {
          const offered = new Set(all.filter((o) => o !== j).flatMap((o) => definesFor(o, t.name)));
          const kept = (j.given.get(t.name) ?? []).filter((n) => offered.has(n));
          return [t.name, [...new Set([...kept, ...unresolvedFor(j, t.name).filter((n) => offered.has(n))])].sort()] as const;
        }),
      );
      if (j.pair.targets.every((t) => given.get(t.name)!.join() === (j.given.get(t.name) ?? []).join())) continue;
      j.judged = await judgeObjectPair({ ...j.pair, provided: (t) => given.get(t.name) ?? [] });
      j.given = given;
      changed = true;
    }
    if (!changed) return;
  }
}

/** The note each object resolved within its bundle gets (one per binary). */
export function crossObjectNotes({ judged, given }: Judged): string[] {
  return [...given].filter(([, names]) => names.length > 0).map(([binary, names]) => `${judged.report.object}: calls ${names.join(', ')}, new in another object's patch for ${binary}: resolved within the bundle`);
}

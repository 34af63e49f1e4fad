/**
 * Stage 5, object diff: each changed object is placed (the link map follows it into the
 * binaries the package installs) and judged against each of them (judge.ts).
 */
import { basename, join } from 'node:path';
import { exists } from '../common/fs.ts';
import { linkMap } from '../wrapper/index.ts';
import { ensureCreateDiffObject } from './create-diff-object.ts';
import { needsBuild, type Candidate, type Stage, type StageContext } from './context.ts';
import { judgeObjectPair, type Judgement, type ObjectPair } from './judge.ts';
import { loadingPrograms } from './loaded-by.ts';
import { originalBinary } from './binaries.ts';
import { libraryDir } from './library-dir.ts';
import { holdsUnit } from './members.ts';
import { memberFinder } from './carry.ts';

interface Judged {
  readonly pair: ObjectPair;
  judged: Judgement;
  /** The `provided` names it was last judged with, per target. */
  given: Map<string, readonly string[]>;
}

/** Places one candidate; null when it is no target (notes and reasons say why). */
async function placeCandidate(ctx: StageContext, cand: Candidate, links: ReadonlyMap<string, readonly string[]>, onProgress: (line: string) => void): Promise<ObjectPair | null> {
  const original = ctx.original!;
  const patched = ctx.patched!;
  const all = links.get(cand.object) ?? linkMap(patched.log).get(cand.object) ?? [];
  const installed = original.shipped === null ? all : all.filter((b) => b in original.shipped!);
  const skipped = all.filter((b) => !installed.includes(b));
  if (skipped.length) ctx.notes.push(`${cand.object}: linked into ${skipped.join(', ')}, which the package does not install: not a target`);
  const binaries: string[] = [];
  for (const binary of installed) {
    if ((await holdsUnit(await originalBinary(original, binary), cand.source)) === false) {
      ctx.notes.push(`${cand.object}: not in ${binary}, whose symbol table names no unit ${basename(cand.source)} (an archive member its link did not pull in): not a target`);
    } else binaries.push(binary);
  }
  if (all.length === 0) {
    // Not a silent "nothing to do": the change is real, we just cannot place it.
    ctx.reasons.push({ object: cand.object, kind: 'unmapped', symbol: null, what: 'changed, but the build log links it into no file (an archive or link step the wrapper did not see?)' });
    ctx.objects.push({ object: cand.object, source: cand.source, binaries: [], verdicts: [{ binary: '', outcome: 'unmapped', exitCode: null, verdict: null }] });
    return null;
  }
  if (binaries.length === 0) return null;
  return {
    object: cand.object,
    source: cand.source,
    original: cand.hasOriginal ? join(original.tree, cand.object) : null,
    patched: join(patched.tree, cand.object),
    sourceExisted: await exists(join(original.tree, cand.source)),
    targets: await Promise.all(
      binaries.map(async (binary) => ({
        name: binary,
        path: await originalBinary(original, binary),
        loadedBy: await Promise.all(loadingPrograms(ctx.input.options.loaders, binary).map((p) => originalBinary(original, p))),
        libraryDir: await libraryDir(original.linked),
      })),
    ),
    scratch: ctx.scratch!,
    onProgress,
    members: (target) => (target.path === null ? null : memberFinder({ log: original.log, tree: patched.tree, binary: target.name, binaryPath: target.path })),
  };
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

/**
 * A patch that adds a function in one file and calls it from another (knot-resolver: the new
 * session_tcp_penalize() in session.c, called from io.c): io.c's object alone has a reference
 * the binary cannot resolve, but the bundle for that binary defines it. Such objects are judged
 * again with the other patch objects' new globals as `--provided` — until nothing changes (a
 * re-judged object may itself start providing).
 */
async function resolveAcrossObjects(all: Judged[]): Promise<void> {
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

export const objectDiffStage: Stage = {
  key: 'diff',
  title: () => 'create-diff-object on each changed object',
  async run(ctx, task) {
    if (!needsBuild(ctx) || ctx.patched!.candidates.length === 0) return task.skip('no changed objects');
    const candidates = ctx.patched!.candidates;
    if (candidates.some((cand) => cand.hasOriginal)) await ensureCreateDiffObject();
    const links = linkMap(ctx.original!.log);
    const onProgress = (line: string): void => {
      task.output = line;
    };
    const all: Judged[] = [];
    for (const cand of candidates) {
      const pair = await placeCandidate(ctx, cand, links, onProgress);
      if (pair) all.push({ pair, judged: await judgeObjectPair(pair), given: new Map() });
    }
    await resolveAcrossObjects(all);
    for (const { judged, given } of all) {
      ctx.reasons.push(...judged.reasons);
      ctx.notes.push(...judged.notes);
      for (const [binary, names] of given) {
        if (names.length) ctx.notes.push(`${judged.report.object}: calls ${names.join(', ')}, new in another object's patch for ${binary}: resolved within the bundle`);
      }
      for (const [binary, patch] of judged.patches) ctx.perBinary.set(binary, [...(ctx.perBinary.get(binary) ?? []), patch]);
      ctx.objects.push(judged.report);
    }
    task.title = `create-diff-object: ${ctx.objects.length} object(s)`;
  },
};

/**
 * "Confirmed against the binary" for compile-only verdicts of bookworm-update units. The walk
 * judges a unit on top of the whole series before it, where no binary exists; the binary users
 * run is the update's base (the tree before the first update unit), which the pipeline builds
 * through the compiler wrapper once (cached). Here the unit is measured again on that build:
 * the translation units it affects are compiled from the build's own log in a copy of the built
 * tree, before and after applying the unit (copies the build compiles follow, copies.ts);
 * create-diff-object runs with --binary against each long-running binary the objects are linked
 * into; the patch objects are linked into a bundle per binary and the loader's dry run
 * (`wfpatch-ctl check`) resolves them in that binary. No package build per unit.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { copyTree, exists, sameBytes } from '../../common/fs.ts';
import { buildId, writeBundle } from '../../bundle/index.ts';
import { judgeObjectPair } from '../../stages/judge.ts';
import { originalBinary } from '../../stages/binaries.ts';
import type { OriginalBuild } from '../../stages/context.ts';
import { linkMap, type CompileEntry } from '../../wrapper/index.ts';
import { checkBundle, type BundleCheck } from '../confirm.ts';
import { isLongRunning, type Services } from '../services.ts';
import { affectedUnits } from './affected.ts';
import { compileUnits, objectName } from './compile.ts';
import { copiesOf, copiedTrees, syncCopies } from './copies.ts';
import { fromBuildLog, rebase } from './database.ts';

export interface BaseInput {
  /** The update base's original build (the wrapper's log and linked binaries). */
  readonly base: OriginalBuild;
  /** The same tree unbuilt (to find copied trees). */
  readonly pristine: string;
  /** The unit as one -p1 patch file. */
  readonly patchFile: string;
  /** Tree-relative files the unit touches. */
  readonly touched: readonly string[];
  readonly services?: Services;
  /** A scratch folder (removed afterwards). */
  readonly work: string;
  readonly jobs: number;
  readonly env: Record<string, string>;
}

export type BaseConfirmation =
  /** Bundles were written and dry-run: the checks decide (confirmVerdict). */
  | { readonly kind: 'checked'; readonly checks: BundleCheck[] }
  /** The unit could not be measured on the base the same way: not confirmed, why. */
  | { readonly kind: 'unconfirmed'; readonly why: string };

/** Which binaries each compiled source's object goes into, per the build's link log. */
function binariesBySource(base: OriginalBuild): Map<string, string[]> {
  const links = linkMap(base.log);
  const out = new Map<string, string[]>();
  for (const e of base.log) {
    if (e.kind !== 'compile' || e.sources.length !== 1) continue;
    const entry = e as CompileEntry;
    const bins = links.get(entry.object) ?? [];
    out.set(entry.sources[0]!, [...new Set([...(out.get(entry.sources[0]!) ?? []), ...bins])]);
  }
  return out;
}

export async function confirmOnBase(input: BaseInput): Promise<BaseConfirmation> {
  const { base } = input;
  const tree = join(input.work, 'tree');
  await rm(input.work, { recursive: true, force: true });
  await mkdir(input.work, { recursive: true });
  try {
    await copyTree(base.tree, tree);
    const database = fromBuildLog(base.log, base.tree).map((u) => rebase(u, base.tree, tree));
    const roots = await copiedTrees(base.tree, input.pristine, database.map((u) => u.source));
    const copies = (await Promise.all(input.touched.map((f) => copiesOf(tree, roots, f)))).flat();
    const affected = await affectedUnits(tree, [...input.touched, ...copies], database);
    const units = affected.units.map((a) => a.unit);
    if (units.length === 0) return { kind: 'unconfirmed', why: 'on the update base, no compiled unit is affected' };
    const beforeFailures = await compileUnits(units, join(input.work, 'before'), input.jobs, input.env);
    if (beforeFailures.length > 0) return { kind: 'unconfirmed', why: `on the update base, ${beforeFailures[0]!.source} does not compile: ${beforeFailures[0]!.error}` };
    const applied = await execa('patch', ['-p1', '--batch', '--no-backup-if-mismatch', '-r', '-', '-i', input.patchFile], { cwd: tree, reject: false, all: true, stdin: 'ignore' });
    if (applied.exitCode !== 0) return { kind: 'unconfirmed', why: 'the unit does not apply alone on the update base' };
    await syncCopies(tree, roots, input.touched);
    const afterFailures = await compileUnits(units, join(input.work, 'after'), input.jobs, input.env);
    if (afterFailures.length > 0) return { kind: 'unconfirmed', why: `on the update base with the unit, ${afterFailures[0]!.source} does not compile: ${afterFailures[0]!.error}` };
    const bySource = binariesBySource(base);
    const perBinary = new Map<string, string[]>();
    const scratch = join(input.work, 'scratch');
    await mkdir(scratch, { recursive: true });
    for (const tu of units) {
      const before = join(input.work, 'before', objectName(tu.source));
      const after = join(input.work, 'after', objectName(tu.source));
      if (!(await exists(after)) || (await sameBytes(before, after))) continue;
      const binaries = (bySource.get(tu.source) ?? []).filter((b) => !input.services || isLongRunning(input.services, b));
      if (binaries.length === 0) continue;
      const targets = await Promise.all(binaries.map(async (b) => ({ name: b, path: await originalBinary(base, b) })));
      const judged = await judgeObjectPair({ object: tu.source, source: tu.source, original: before, patched: after, sourceExisted: true, targets, scratch });
      const refused = judged.report.verdicts.find((v) => v.outcome !== 'patch' && v.outcome !== 'nothing');
      if (refused) {
        const reason = judged.reasons.find((r) => r.kind !== 'layout') ?? judged.reasons[0];
        return { kind: 'unconfirmed', why: `on the update base, create-diff-object --binary ${refused.binary}: ${refused.outcome}${reason ? ` (${reason.what.slice(0, 200)})` : ''}` };
      }
      for (const [binary, patch] of judged.patches) perBinary.set(binary, [...(perBinary.get(binary) ?? []), patch]);
    }
    if (perBinary.size === 0) return { kind: 'unconfirmed', why: 'on the update base, no long-running binary changes' };
    const checks: BundleCheck[] = [];
    for (const [binary, patches] of perBinary) {
      const path = await originalBinary(base, binary);
      const file = join(scratch, `${binary.replace(/\//g, '__')}.wfp`);
      const meta = { format: 1, patch: input.patchFile, sha256: '', cves: [], target: { path: binary, buildId: await buildId(path) } } as const;
      const bundle = await writeBundle(patches, meta, file, scratch);
      if (!bundle.ok) {
        checks.push({ binary, ok: false, line: `bundle does not link: ${bundle.error}` });
        continue;
      }
      checks.push(await checkBundle(file, path, binary));
    }
    return { kind: 'checked', checks };
  } finally {
    await rm(input.work, { recursive: true, force: true });
  }
}

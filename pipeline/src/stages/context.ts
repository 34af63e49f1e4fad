/**
 * What the stages of `wfbuild PATCH` share: the run's input, what each stage leaves for the
 * next, and the shape of a stage. index.ts lists the stages in order.
 */
import type { BundleReport, IgnoredObject, ObjectReport, Reason } from '../report/types.ts';
import type { LoaderRule } from './loaded-by.ts';

export type { IgnoredObject } from '../report/types.ts';
import type { Triage } from '../triage/index.ts';
import type { BuildLogEntry, CompileEntry } from '../wrapper/index.ts';
import type { MakeInvocation } from '../wrapper/make-records.ts';

/** A source tree to build, and what it is. */
export interface SourceTree {
  /** Absolute path of the unpacked tree (never modified by wfbuild). */
  readonly dir: string;
  /** Debian source package name and version, when the tree has debian/changelog. */
  readonly package: { readonly name: string; readonly version: string } | null;
  /** Whether debian/rules exists (decides the default build command). */
  readonly debian: boolean;
}

/** An earlier fix (`--after`) applied to the tree before both builds. */
export interface EarlierPatch {
  readonly name: string;
  /** Absolute path. */
  readonly path: string;
  readonly sha256: string;
}

/** How a tree is built: the same command for the original build and the patched rebuild. */
export interface BuildCommand {
  /** As shown to the user and hashed into the cache key. */
  readonly display: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** A finished original build, cached under cacheRoot/wfbuild/orig/<key>/ and never modified. */
export interface OriginalBuild {
  readonly key: string;
  readonly dir: string;
  /** The built tree: also the snapshot of the original objects and unstripped binaries. */
  readonly tree: string;
  readonly log: readonly BuildLogEntry[];
  /**
   * Linked files the package installs (tree-relative → installed path), found by installing
   * the build into a staging folder and matching bytes; null when unknown (non-Debian tree):
   * then every linked file counts.
   */
  readonly shipped: Readonly<Record<string, string>> | null;
  /** Whether this run found the build in the cache. */
  readonly cached: boolean;
  /** The outermost make invocations, in order: what the patched build re-runs. */
  readonly makes: readonly MakeInvocation[];
  /** The wrapper's copies of the linked outputs, taken when linked (wrapper capturedPath()). */
  readonly linked: string;
}

/** A recompiled object whose bytes differ from the original's. */
export interface Candidate {
  readonly object: string;
  readonly source: string;
  /** False when the original build had no such object (a file the patch adds to the build). */
  readonly hasOriginal: boolean;
}

export interface PatchedBuild {
  /** The patched copy of the tree (removed by cleanup()). */
  readonly tree: string;
  readonly log: readonly BuildLogEntry[];
  readonly recompiled: readonly CompileEntry[];
  readonly candidates: readonly Candidate[];
  /** Recompiled objects that came out byte-identical. */
  readonly unchanged: readonly string[];
  /** How it was rebuilt: the recorded makes re-run, or the whole build command (and why). */
  readonly how: string;
  /** Copies of patched files in copies of the tree the build compiles (exim4's b-exim4-daemon-light/src/…), patched too. */
  readonly copies: readonly string[];
  cleanup(): Promise<void>;
}

export interface ClassifyOptions {
  /** The Debian source patch (unified diff, applied with patch -p1). */
  readonly patch: string;
  /** `NAME[=VERSION]`, fetched with apt-get source into the cache. One of package/source. */
  readonly package?: string;
  /** An unpacked tree (a Debian tree with its own patches applied). */
  readonly source?: string;
  /**
   * Earlier fixes the patch is written on top of (patch files, or quilt series files listing
   * them), applied in order before both builds.
   */
  readonly after?: readonly string[];
  /** Build command line (default: debian/rules build-arch, or make). */
  readonly buildCmd?: string;
  /** Output folder for report.json (and bundles); null writes nothing. */
  readonly out?: string | null;
  /** Write bundles into `out` (build) or only classify (classify). Default true. */
  readonly bundles?: boolean;
  /** listr2 renderer: 'default' (terminal), 'simple' (logs), 'silent' (API, --json). */
  readonly renderer?: 'default' | 'simple' | 'silent';
  /** Cache root (default: cacheRoot from paths.ts). */
  readonly cache?: string;
  /** With `package` NAME=VERSION: the original is `wfbuild enable`'s build of it (enable/original.ts). */
  readonly enabled?: boolean;
  /** Which programs dlopen() which modules of the build (loaded-by.ts): create-diff-object --loaded-by. */
  readonly loaders?: readonly LoaderRule[];
}

/** The run's input, resolved: absolute paths, defaults applied. */
export interface StageInput {
  readonly options: ClassifyOptions;
  readonly patchPath: string;
  /** cacheRoot/wfbuild. */
  readonly cache: string;
  readonly writeBundles: boolean;
}

/** Filled in stage by stage; a later stage reads what an earlier one left. */
export interface StageContext {
  readonly input: StageInput;
  triage?: Triage;
  tree?: SourceTree;
  /**
   * For a Debian tree, what `apt-get build-dep` installs from: `NAME=VERSION` for --package (the
   * registry's exact version), the folder for --source.
   */
  buildDepsFrom?: string;
  /** The --after patches, applied to `tree` (a prepared copy in the cache) before both builds. */
  after?: readonly EarlierPatch[];
  cmd?: BuildCommand;
  original?: OriginalBuild;
  patched?: PatchedBuild;
  objects: ObjectReport[];
  reasons: Reason[];
  notes: string[];
  /** Objects that differ for reasons that are not the patch: named in the report, not judged. */
  ignored: IgnoredObject[];
  bundles: BundleReport[];
  /** Affected binaries for which no loadable bundle came out. */
  unbundled: string[];
  /** Patch objects per affected binary, for the bundle stage. */
  perBinary: Map<string, string[]>;
  /** Where create-diff-object and the bundles write (inside the patched build's work folder). */
  scratch?: string;
  timings: Record<string, number>;
}

/** The part of a listr2 task a stage uses: its title, a progress line, and skipping. */
export interface StageTask {
  title: string;
  output: string;
  skip(message: string): void;
}

export interface Stage {
  /** Its key in report.json's `timings`. */
  readonly key: string;
  title(input: StageInput): string;
  run(ctx: StageContext, task: StageTask): Promise<void>;
}

/** Whether triage found compiled files among the touched ones (else nothing is built). */
export function needsBuild(ctx: StageContext): boolean {
  return ctx.triage?.touchesCompiledCode === true;
}

import { ExitCode } from '../cli/errors.ts';
import type { TouchedFile } from '../triage/index.ts';
import type { PatchHeader } from '../triage/dep3.ts';

/** Documented field by field in pipeline/README.md ("report.json"). */
export type Outcome = 'kpatchable' | 'not-kpatchable' | 'not-text-only' | 'no-compiled-code';

/** One "no": why a patch is not text-only or not kpatch-able. */
export interface Reason {
  /** The object (or, in the corpus' compile-only mode, the source) it concerns; null for a bundle. */
  readonly object: string | null;
  /**
   * create-diff-object's kind ("data": not text-only, "unpatchable", "error", or its outcome when
   * it gave no reason), or ours: "new-object", "unmapped", "layout", "bundle".
   */
  readonly kind: string;
  readonly symbol: string | null;
  readonly what: string;
}

/** create-diff-object's answer by exit code: 0 patch, 3 nothing, 4 not-text-only, 5 not-patchable, other error. */
export type DiffOutcome = 'patch' | 'nothing' | 'not-text-only' | 'not-patchable' | 'error';

/**
 * An object's verdict against one binary: create-diff-object's, or 'new-object' (no original
 * to compare), or 'unmapped' (changed, but the build log links it into nothing: we cannot tell
 * what to patch).
 */
export type VerdictOutcome = DiffOutcome | 'new-object' | 'unmapped';

export interface ObjectVerdict {
  readonly binary: string;
  readonly outcome: VerdictOutcome;
  readonly exitCode: number | null;
  /** create-diff-object's verdict JSON, verbatim. */
  readonly verdict: unknown;
  /**
   * Archive members the binary's link left out that the patched code needs, carried in the
   * patch (stages/carry.ts); absent when none.
   */
  readonly carried?: readonly { readonly object: string; readonly defines: readonly string[] }[];
}

export interface ObjectReport {
  readonly object: string;
  readonly source: string;
  /** Shipped files this object is linked into. */
  readonly binaries: readonly string[];
  readonly verdicts: readonly ObjectVerdict[];
  /** Structs/unions (from DWARF, via pahole) whose layout differs between the builds. */
  readonly layoutChanges?: readonly { readonly type: string; readonly what: string }[];
}

export interface BundleReport {
  /** The linked file in the build tree, e.g. "memcached". */
  readonly binary: string;
  /** Where the package installs it (e.g. /usr/bin/memcached), when known. */
  readonly installedPath: string | null;
  /**
   * The binary the bundle patches: the original build's (function sections, unstripped), in
   * the cache. Its build-id is `buildId`; the process to patch must run this file (or a copy).
   */
  readonly originalPath: string;
  /** The original build's own libraries by soname, for the loader's dry run (stages/library-dir.ts). */
  readonly libraryDir: string | null;
  readonly buildId: string | null;
  /** The bundle's file name in the output folder (null for `classify`, which writes none). */
  readonly file: string | null;
  readonly sha256: string | null;
  readonly objects: readonly string[];
}

/** A recompiled object that differs, but is no patch target, and why (`ignored` in report.json). */
export interface IgnoredObject {
  readonly object: string;
  readonly source: string;
  /** `unlinked`: no recorded link or archive uses it; `noise`: the patch's files do not reach it. */
  readonly why: 'unlinked' | 'noise';
  readonly what: string;
}

/** How the patched build ran and what it recompiled. */
export interface PatchedBuildReport {
  /** The recorded make invocations re-run, or the whole build command (and why). */
  readonly how: string;
  /** Compiles the patched build ran (objects recompiled). */
  readonly recompiled: number;
  /** Recompiled objects whose bytes differ, before `ignored` is taken out. */
  readonly differing: number;
  /** Objects judged as changed (candidates for create-diff-object). */
  readonly changed: number;
}

export interface Report {
  readonly format: 1;
  readonly patch: { readonly name: string; readonly path: string; readonly sha256: string } & Omit<PatchHeader, 'fields'>;
  readonly package: { readonly name: string; readonly version: string } | null;
  readonly source: string | null;
  readonly buildCommand: string | null;
  /**
   * How the builds ran: the command's argv and its whole environment (clean, not the caller's;
   * the compiler wrapper then adds its shim folder in front of PATH, CC, CXX and WFBUILD_*).
   */
  /** The --after patches (earlier fixes) both builds contained, in order. */
  readonly after: readonly { readonly name: string; readonly path: string; readonly sha256: string }[];
  readonly build: { readonly argv: readonly string[]; readonly env: Readonly<Record<string, string>> } | null;
  readonly cves: readonly string[];
  readonly files: readonly TouchedFile[];
  readonly outcome: Outcome;
  readonly textOnly: boolean | null;
  readonly kpatchable: boolean | null;
  readonly reasons: readonly Reason[];
  readonly notes: readonly string[];
  readonly objects: readonly ObjectReport[];
  /** Objects that differ for reasons that are not the patch: not judged, each with why. */
  readonly ignored: readonly IgnoredObject[];
  /**
   * The bundles that linked: for every affected binary when kpatch-able; when not, those of
   * the binaries that could be patched (none for data changes).
   */
  readonly bundles: readonly BundleReport[];
  readonly originalBuild: { readonly key: string; readonly cached: boolean } | null;
  /** Null when nothing was built. */
  readonly patchedBuild: PatchedBuildReport | null;
  /** Milliseconds per stage. */
  readonly timings: Readonly<Record<string, number>>;
}

export function exitCodeFor(outcome: Outcome): number {
  switch (outcome) {
    case 'kpatchable':
      return ExitCode.ok;
    case 'no-compiled-code':
      return ExitCode.noCompiledCode;
    case 'not-text-only':
      return ExitCode.notTextOnly;
    case 'not-kpatchable':
      return ExitCode.notKpatchable;
  }
}

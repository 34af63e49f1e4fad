import { ExitCode } from '../cli/errors.ts';
import type { TouchedFile } from '../triage/index.ts';

/** Documented field by field in pipeline/README.md ("report.json"). */
export type Outcome = 'kpatchable' | 'not-kpatchable' | 'not-text-only' | 'no-compiled-code';

export interface Reason {
  readonly object: string | null;
  /** "data" (changes data: not text-only), "unpatchable", "error", "new-object", "unmapped", "layout", "bundle". */
  readonly kind: string;
  readonly symbol: string | null;
  readonly what: string;
}

export interface ObjectVerdict {
  readonly binary: string;
  /**
   * create-diff-object's answer ('patch' 0, 'nothing' 3, 'not-text-only' 4, 'not-patchable' 5,
   * 'error' 1/2), or 'new-object' (no original to compare), or 'unmapped' (changed, but the
   * build log links it into nothing: we cannot tell what to patch).
   */
  readonly outcome: 'patch' | 'nothing' | 'not-text-only' | 'not-patchable' | 'error' | 'new-object' | 'unmapped';
  readonly exitCode: number | null;
  /** create-diff-object's verdict JSON, verbatim. */
  readonly verdict: unknown;
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
  readonly buildId: string | null;
  /** The bundle's file name in the output folder (null for `classify`, which writes none). */
  readonly file: string | null;
  readonly sha256: string | null;
  readonly objects: readonly string[];
}

export interface Report {
  readonly format: 1;
  readonly patch: {
    readonly name: string;
    readonly path: string;
    readonly sha256: string;
    readonly description: string | null;
    readonly longDescription: string;
    readonly origin: string | null;
    readonly bugs: readonly string[];
    readonly bugDebian: string | null;
    readonly forwarded: string | null;
    readonly author: string | null;
  };
  readonly package: { readonly name: string; readonly version: string } | null;
  readonly source: string | null;
  readonly buildCommand: string | null;
  readonly cves: readonly string[];
  readonly files: readonly TouchedFile[];
  readonly outcome: Outcome;
  readonly textOnly: boolean | null;
  readonly kpatchable: boolean | null;
  readonly reasons: readonly Reason[];
  readonly notes: readonly string[];
  readonly objects: readonly ObjectReport[];
  readonly bundles: readonly BundleReport[];
  readonly originalBuild: { readonly key: string; readonly cached: boolean } | null;
  /** Milliseconds per stage. */
  readonly timings: Readonly<Record<string, number>>;
}

export function exitCodeFor(outcome: Outcome): number {
  switch (outcome) {
    case 'kpatchable':
      return ExitCode.ok;
    case 'no-compiled-code':
      return 3;
    case 'not-text-only':
      return 4;
    case 'not-kpatchable':
      return 5;
  }
}

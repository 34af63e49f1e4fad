/**
 * A Debian tree's build dependencies: checked with dpkg-checkbuilddeps and installed with
 * `apt-get build-dep` (as root), before any build — the one place wfbuild (--package, --source)
 * and the corpus do this. Without it a configure script either fails far from the cause
 * (`configure: error: *** libwrap missing`) or, worse, silently drops a feature and builds a
 * binary Debian does not ship (chrony without seccomp).
 */
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { tail } from './text.ts';

/** What dpkg-checkbuilddeps reports unmet: dependencies (with versions, alternatives) and conflicts. */
export interface UnmetBuildDeps {
  readonly depends: readonly string[];
  readonly conflicts: readonly string[];
}

export interface EnsureBuildDepsOptions {
  /** The unpacked tree (with debian/control). */
  readonly tree: string;
  /**
   * What `apt-get build-dep` installs from: `NAME=VERSION` (the registry's exact version), a
   * .dsc, or a folder with debian/control (absolute or starting with ./).
   */
  readonly installFrom: string;
  /** For messages, e.g. "chrony 4.3-2+deb12u3". */
  readonly label: string;
  readonly log?: (line: string) => void;
  /** Whether to install (default: when running as root). */
  readonly install?: boolean;
}

/**
 * Splits dpkg's dependency list ("a b (>= 1) c | d [amd64]") into entries, keeping versions,
 * alternatives and architecture qualifiers with their package.
 */
export function splitDependencyList(text: string): string[] {
  const normalized = text.trim().replace(/\s*\|\s*/g, '|').replace(/\s+(?=[([<])/g, '\u0000');
  const entries: string[] = [];
  const closing: Record<string, string> = { '(': ')', '[': ']', '<': '>' };
  let current = '';
  // The bracket we are inside ("(>= 1)" holds a '>' that closes nothing).
  let inside: string | null = null;
  for (const ch of normalized) {
    if (inside === null && closing[ch] !== undefined) inside = closing[ch];
    else if (ch === inside) inside = null;
    if (/\s/.test(ch) && inside === null) {
      if (current) entries.push(current);
      current = '';
    } else current += ch;
  }
  if (current) entries.push(current);
  return entries.map((e) => e.replace(/\u0000/g, ' ').replace(/\|/g, ' | '));
}

/** Parses dpkg-checkbuilddeps' stderr ("dpkg-checkbuilddeps: error: Unmet build dependencies: …"). */
export function parseCheckBuildDeps(output: string): UnmetBuildDeps {
  const depends = /Unmet build dependencies: (.*)$/m.exec(output)?.[1];
  const conflicts = /Build conflicts: (.*)$/m.exec(output)?.[1];
  return { depends: depends ? splitDependencyList(depends) : [], conflicts: conflicts ? splitDependencyList(conflicts) : [] };
}

/**
 * The tree's unmet build dependencies for an architecture-dependent build (`-B`: what
 * `debian/rules build-arch` needs; Build-Depends-Indep is for the documentation and
 * arch-all packages).
 */
export async function unmetBuildDeps(tree: string): Promise<UnmetBuildDeps> {
  const check = await execa('dpkg-checkbuilddeps', ['-B'], { cwd: tree, reject: false, all: true, stdin: 'ignore', env: { LC_ALL: 'C.UTF-8' } });
  if (check.exitCode === 0) return { depends: [], conflicts: [] };
  const unmet = parseCheckBuildDeps(check.all ?? '');
  if (unmet.depends.length === 0 && unmet.conflicts.length === 0) {
    throw new UserError(`dpkg-checkbuilddeps in ${tree} failed (exit ${check.exitCode}):\n${tail(check.all ?? '', 5)}`, ExitCode.missingPrerequisite);
  }
  return unmet;
}

function describeUnmet(unmet: UnmetBuildDeps): string {
  return [
    ...(unmet.depends.length ? [`missing: ${unmet.depends.join(', ')}`] : []),
    ...(unmet.conflicts.length ? [`conflicting (installed): ${unmet.conflicts.join(', ')}`] : []),
  ].join('; ');
}

const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Checks the build dependencies and, as root, installs the missing ones with
 * `apt-get build-dep --arch-only`; throws UserError (exit 13) naming what is still missing —
 * never lets a build start without them. Returns what was missing before (empty: nothing to do).
 */
export async function ensureBuildDeps(opts: EnsureBuildDepsOptions): Promise<UnmetBuildDeps> {
  const before = await unmetBuildDeps(opts.tree);
  if (before.depends.length === 0 && before.conflicts.length === 0) return before;
  const command = `apt-get build-dep --arch-only ${opts.installFrom}`;
  if (!(opts.install ?? isRoot())) {
    throw new UserError(
      `build dependencies of ${opts.label} are not installed (${describeUnmet(before)})\ninstall them as root: ${command}  (wfbuild does this itself when run as root)`,
      ExitCode.missingPrerequisite,
    );
  }
  opts.log?.(`installing the build dependencies of ${opts.label}: ${before.depends.join(' ')}`);
  const result = await execa(
    'apt-get',
    // Waits for dpkg's lock instead of failing when another install runs (parallel wfbuilds).
    ['build-dep', '-y', '-q', '--arch-only', '-o', 'DPkg::Lock::Timeout=600', opts.installFrom],
    { env: { DEBIAN_FRONTEND: 'noninteractive' }, reject: false, all: true, stdin: 'ignore' },
  );
  const after = await unmetBuildDeps(opts.tree);
  if (after.depends.length > 0 || after.conflicts.length > 0 || result.exitCode !== 0) {
    const apt = (result.all ?? '').split('\n').filter((l) => /^E: /.test(l));
    throw new UserError(
      `${command} could not install the build dependencies of ${opts.label} (exit ${result.exitCode})` +
        `${after.depends.length || after.conflicts.length ? `; still ${describeUnmet(after)}` : ''}:\n${apt.length ? apt.join('\n') : tail(result.all ?? '', 8)}`,
      ExitCode.missingPrerequisite,
    );
  }
  return before;
}

/** Applying a Debian source patch (patch -p1), and checking that it applies before any build. */
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { ExitCode, UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import { tail } from '../common/text.ts';

const patchArgs = (patchFile: string): string[] => ['-p1', '--batch', '--forward', '--no-backup-if-mismatch', '-i', patchFile];

/**
 * Explains a failed `patch`: names the file and hunk, and says when the files do not exist at
 * all (a patch for another package or version).
 */
export function explainReject(output: string, patchName: string): string {
  const problems: string[] = [];
  let file = '?';
  let missing = 0;
  for (const line of output.split('\n')) {
    const patching = /^(?:checking|patching) file (.*)$/.exec(line);
    if (patching) file = patching[1].replace(/^'(.*)'$/, '$1');
    const hunk = /^Hunk #(\d+) FAILED at (\d+)/.exec(line);
    if (hunk) problems.push(`${file}: hunk #${hunk[1]} (at line ${hunk[2]}) does not apply`);
    const nofile = /^can't find file to patch at input line (\d+)/.exec(line);
    if (nofile) missing++;
    if (/Reversed \(or previously applied\) patch detected/.test(line)) problems.push(`${file}: already applied (or reversed)`);
  }
  if (missing > 0) {
    const named = [...output.matchAll(/^\|?\+\+\+ (?:b\/)?(\S+)/gm)].map((m) => m[1]);
    problems.unshift(`${missing} file(s) to patch do not exist in the tree${named.length ? ` (${[...new Set(named)].join(', ')})` : ''}: is it a patch for another package or version?`);
  }
  if (problems.length === 0) problems.push(tail(output.trim(), 5));
  return `${patchName} does not apply to this tree:\n  ${[...new Set(problems)].join('\n  ')}`;
}

/**
 * `patch -p1`, checked first on a scratch copy of the files it touches (patchApplies), so a
 * reject leaves no half-patched tree behind — not with `patch --dry-run`, which rejects a
 * patch whose later diff changes what an earlier diff of it changed (a corpus unit of several
 * patches: mosquitto's CVE-2023-28366 and its regression fix).
 */
export async function applyPatch(tree: string, patchFile: string, patchName: string): Promise<void> {
  const check = await patchApplies(tree, patchFile, join(tmpdir(), 'wfbuild-apply-check'));
  if (!check.ok) throw new UserError(explainReject(check.output, patchName), ExitCode.usage);
  const real = await execa('patch', patchArgs(patchFile), { cwd: tree, reject: false, all: true, stdin: 'ignore' });
  if (real.exitCode !== 0) throw new UserError(explainReject(real.all ?? '', patchName), ExitCode.usage);
}

/** The tree paths a -p1 patch names in its file headers (/dev/null and escaping paths left out). */
function touchedPaths(text: string): Set<string> {
  const paths = new Set<string>();
  for (const m of text.matchAll(/^(?:---|\+\+\+) ([^\t\n]+)/gm)) {
    const path = m[1]!.trim().replace(/^[^/]+\//, '');
    if (path !== '/dev/null' && !path.includes('..') && !path.startsWith('/')) paths.add(path);
  }
  return paths;
}

export type ApplyCheck = { readonly ok: true } | { readonly ok: false; readonly output: string };

/**
 * Does the patch apply to `tree`? Applied for real to a scratch copy of only the files it
 * touches (a big tree is not copied, the tree itself never changes), in a `check-<pid>-…`
 * folder under `scratchRoot`. Not `patch --dry-run`: it rejects valid patches whose later diffs
 * touch a file an earlier diff of the same patch created or changed (samba's CVE-2025-10230
 * group, bug-16018-v4-17-lts-v8.patch).
 */
export async function patchApplies(tree: string, patchFile: string, scratchRoot: string): Promise<ApplyCheck> {
  const text = await readFile(patchFile, 'utf8');
  await mkdir(scratchRoot, { recursive: true });
  const scratch = await mkdtemp(join(scratchRoot, `check-${process.pid}-`));
  try {
    for (const path of touchedPaths(text)) {
      if (await exists(join(tree, path))) {
        await mkdir(dirname(join(scratch, path)), { recursive: true });
        await cp(join(tree, path), join(scratch, path));
      }
    }
    const result = await execa('patch', patchArgs(patchFile), { cwd: scratch, reject: false, all: true, stdin: 'ignore' });
    return result.exitCode === 0 ? { ok: true } : { ok: false, output: result.all ?? '' };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

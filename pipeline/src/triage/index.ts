import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { parsePatch } from 'diff';
import { UserError } from '../cli/errors.ts';
import { parseHeader, findCves, type PatchHeader } from './dep3.ts';
import { classifyPath, mayChangeCompiledCode, type FileKind } from './files.ts';

export type { PatchHeader } from './dep3.ts';
export type { FileKind } from './files.ts';

export interface TouchedFile {
  /** Path relative to the tree root (the patch is applied with -p1). */
  readonly path: string;
  readonly kind: FileKind;
  readonly change: 'modified' | 'added' | 'deleted';
  readonly hunks: number;
  readonly added: number;
  readonly removed: number;
  /** Whether a change to this file may change compiled code (decides whether we build). */
  readonly mayChangeCode: boolean;
}

export interface Triage {
  /** The patch's file name, e.g. 0009-CVE-2023-46852.patch. */
  readonly name: string;
  readonly sha256: string;
  readonly header: PatchHeader;
  /** From the header fields, the header text and the file name. */
  readonly cves: readonly string[];
  readonly files: readonly TouchedFile[];
  /** False when only docs, tests, packaging or other non-compiled files change. */
  readonly touchesCompiledCode: boolean;
}

/** Where the header ends: the first line that starts a file's diff. */
function headerEnd(lines: readonly string[]): number {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^diff (--git|-[a-zA-Z]+) /.test(line) || /^Index: \S/.test(line)) return i;
    if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) return i;
  }
  return lines.length;
}

/** Strips the a/ b/ prefix that `patch -p1` removes; null for /dev/null. */
function stripPath(name: string | undefined): string | null {
  if (name === undefined || name === '/dev/null' || name === '') return null;
  const slash = name.indexOf('/');
  return slash < 0 ? name : name.slice(slash + 1);
}

/**
 * Parses a Debian source patch. Throws UserError (exit 2) for input that is not a usable text
 * patch: no file diffs, malformed hunks, binary diffs (patch(1) cannot apply them and neither
 * can we reason about them).
 */
export function triagePatch(text: string, fileName: string): Triage {
  const name = basename(fileName);
  const sha256 = createHash('sha256').update(text).digest('hex');
  const normalized = text.replace(/\r\n/g, '\n');
  const lines = normalized.split('\n');
  const start = headerEnd(lines);
  if (start === lines.length) {
    throw new UserError(`${name}: not a patch: no file diff ("--- a/FILE" / "+++ b/FILE") found`);
  }
  let lastGitFile: string | null = null;
  for (let i = start; i < lines.length; i++) {
    const git = /^diff --git a\/(.*) b\/(.*)$/.exec(lines[i]);
    if (git) lastGitFile = git[2];
    const binary = /^Binary files (?:a\/)?(.*?) and (?:b\/)?(.*?) differ$/.exec(lines[i]);
    if (binary || lines[i] === 'GIT binary patch') {
      const file = binary ? (binary[2] === '/dev/null' ? binary[1] : binary[2]) : lastGitFile ?? '?';
      throw new UserError(`${name}: binary diff for ${file} (line ${i + 1}): wfbuild handles text patches only`);
    }
  }
  // git format-patch ends with a "-- " signature line and the git version; parsePatch rejects it.
  let end = lines.length;
  for (let i = lines.length - 1; i >= start; i--) {
    if (lines[i] === '-- ') {
      end = i;
      break;
    }
  }
  const body = lines.slice(start, end).join('\n');
  let parsed: ReturnType<typeof parsePatch>;
  try {
    parsed = parsePatch(body);
  } catch (error) {
    throw new UserError(`${name}: malformed patch: ${(error as Error).message}`);
  }
  const files: TouchedFile[] = [];
  for (const entry of parsed) {
    const oldPath = stripPath(entry.oldFileName);
    const newPath = stripPath(entry.newFileName);
    const path = newPath ?? oldPath;
    if (path === null) continue; // an index with no file (e.g. quilt's trailing metadata)
    if (entry.hunks.length === 0) continue; // mode-only change or an empty entry
    const change = oldPath === null ? 'added' : newPath === null ? 'deleted' : 'modified';
    let added = 0;
    let removed = 0;
    for (const hunk of entry.hunks) {
      for (const line of hunk.lines) {
        if (line.startsWith('+')) added++;
        else if (line.startsWith('-')) removed++;
      }
    }
    const kind = classifyPath(path);
    files.push({ path, kind, change, hunks: entry.hunks.length, added, removed, mayChangeCode: mayChangeCompiledCode(path, kind) });
  }
  if (files.length === 0) throw new UserError(`${name}: not a patch: it has no hunks`);
  const headerText = lines.slice(0, start).join('\n');
  const header = parseHeader(headerText);
  return {
    name,
    sha256,
    header,
    cves: findCves(headerText, name),
    files,
    touchesCompiledCode: files.some((f) => f.mayChangeCode),
  };
}

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

/** git format-patch's mbox separator: a file made by concatenating mailed commits has one per commit. */
const mboxSeparator = /^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$/;

interface MailedCommit {
  /** The commit's own message (empty for the first, whose header is the file's header). */
  readonly header: string;
  /** Its file diffs, without git format-patch's "-- " signature. */
  readonly body: string;
  /** 1-based line of the file where it starts. */
  readonly firstLine: number;
}

/**
 * Splits a patch into the commits it concatenates. Debian often ships an upstream fix as
 * several format-patch commits in one file (a forge's compare URL ending in .patch); each
 * commit after the first brings its own mail header and signature, which are not diff lines.
 */
function mailedCommits(lines: readonly string[], firstDiff: number): MailedCommit[] {
  const starts = [firstDiff];
  for (let i = firstDiff; i < lines.length; i++) if (mboxSeparator.test(lines[i])) starts.push(i);
  return starts.map((from, k) => {
    const to = k + 1 < starts.length ? starts[k + 1] : lines.length;
    const part = lines.slice(from, to);
    const diffAt = k === 0 ? 0 : headerEnd(part);
    let end = part.length;
    for (let i = part.length - 1; i >= diffAt; i--) {
      if (part[i] === '-- ') {
        end = i;
        break;
      }
    }
    return { header: k === 0 ? '' : part.slice(0, diffAt).join('\n'), body: part.slice(diffAt, end).join('\n'), firstLine: from + 1 };
  });
}

/** One parsed file diff as a TouchedFile; null for entries that change no file content. */
function touchedFile(entry: ReturnType<typeof parsePatch>[number]): TouchedFile | null {
  const oldPath = stripPath(entry.oldFileName);
  const newPath = stripPath(entry.newFileName);
  const path = newPath ?? oldPath;
  if (path === null) return null; // an index with no file (e.g. quilt's trailing metadata)
  if (entry.hunks.length === 0) return null; // mode-only change or an empty entry
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
  return { path, kind, change, hunks: entry.hunks.length, added, removed, mayChangeCode: mayChangeCompiledCode(path, kind) };
}

/** The same file changed by two commits of one patch: one entry, its net change. */
function mergeTouched(earlier: TouchedFile | undefined, later: TouchedFile): TouchedFile {
  if (!earlier) return later;
  const change = earlier.change === 'added' ? (later.change === 'deleted' ? 'deleted' : 'added') : later.change === 'added' ? 'modified' : later.change;
  return { ...later, change, hunks: earlier.hunks + later.hunks, added: earlier.added + later.added, removed: earlier.removed + later.removed };
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
  const headers: string[] = [lines.slice(0, start).join('\n')];
  const files = new Map<string, TouchedFile>();
  const commits = mailedCommits(lines, start);
  for (const commit of commits) {
    headers.push(commit.header);
    let parsed: ReturnType<typeof parsePatch>;
    try {
      parsed = parsePatch(commit.body);
    } catch (error) {
      throw new UserError(`${name}: malformed patch: ${(error as Error).message}${commits.length > 1 ? ` (in the commit from line ${commit.firstLine})` : ''}`);
    }
    for (const entry of parsed) {
      const touched = touchedFile(entry);
      if (touched) files.set(touched.path, mergeTouched(files.get(touched.path), touched));
    }
  }
  if (files.size === 0) throw new UserError(`${name}: not a patch: it has no hunks`);
  const header = parseHeader(headers[0]);
  const touched = [...files.values()];
  return {
    name,
    sha256,
    header,
    cves: findCves(headers.join('\n'), name),
    files: touched,
    touchesCompiledCode: touched.some((f) => f.mayChangeCode),
  };
}

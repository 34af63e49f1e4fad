import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, readFile, realpath, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { basename, delimiter, dirname, isAbsolute, join, normalize, relative, resolve } from 'node:path';

/** The wrapper script; its hash is part of the original-build cache key. */
export const wrapperScript: string = fileURLToPath(new URL('./cc-wrapper.sh', import.meta.url));

/** Names the shim folder answers to: everything a build system may call a C/C++ compiler. */
export const compilerNames: readonly string[] = [
  'gcc', 'cc', 'g++', 'c++', 'gcc-12', 'g++-12',
  'x86_64-linux-gnu-gcc', 'x86_64-linux-gnu-g++', 'x86_64-linux-gnu-gcc-12', 'x86_64-linux-gnu-g++-12',
  // Archivers: recorded only, so objects are followed through static archives.
  'ar', 'gcc-ar', 'x86_64-linux-gnu-ar', 'x86_64-linux-gnu-gcc-ar',
  // make: the outermost invocations are recorded, for the patched build to re-run (make-records.ts).
  'make', 'gmake', 'ninja',
];

export async function wrapperVersion(): Promise<string> {
  const text = await readFile(wrapperScript);
  return createHash('sha256').update(text).update(compilerNames.join(',')).digest('hex').slice(0, 16);
}

/** Creates `dir` with the wrapper and one symlink per compiler name. */
export async function installShims(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const script = join(dir, 'wfbuild-cc-wrapper');
  await copyFile(wrapperScript, script);
  await chmod(script, 0o755);
  for (const name of compilerNames) await symlink('wfbuild-cc-wrapper', join(dir, name));
}

/** The environment that routes a build's compiler calls through the shims and records them. */
export function wrapperEnv(shimDir: string, logDir: string, tree: string, basePath: string = process.env.PATH ?? '/usr/bin:/bin'): Record<string, string> {
  return {
    PATH: `${shimDir}${delimiter}${basePath}`,
    WFBUILD_REAL_PATH: basePath,
    WFBUILD_LOG: logDir,
    WFBUILD_TREE: tree,
    // Build systems that honour CC/CXX get the shim by name, not by a path into a temp folder,
    // so the value they store (Makefile, CMakeCache) stays valid for the patched rebuild.
    CC: 'gcc',
    CXX: 'g++',
  };
}

export interface CompileEntry {
  readonly kind: 'compile';
  /** Paths relative to the tree root. */
  readonly cwd: string;
  readonly sources: readonly string[];
  readonly object: string;
  readonly tool: string;
  readonly args: readonly string[];
  /** Compiled under no recorded make (a script or build tool other than make ran the compiler). */
  readonly outsideMake?: true;
}

export interface LinkEntry {
  readonly kind: 'link';
  readonly cwd: string;
  readonly output: string;
  /** Objects and archives linked, relative to the tree root; -l libraries are not listed. */
  readonly inputs: readonly string[];
  /** Sources compiled and linked in the same call (no object file to compare). */
  readonly sources: readonly string[];
  /** Where each -lNAME may come from (lib/NAME.a, .so in every -L folder), tree-relative. */
  readonly libraryCandidates?: readonly string[];
  readonly shared: boolean;
  readonly tool: string;
  readonly args: readonly string[];
}

export type BuildLogEntry = CompileEntry | LinkEntry;

const sourceExt = /\.(c|cc|cpp|cxx|c\+\+|C|s|S|sx|i|ii|m)$/;
const inputExt = /\.(o|a|lo|so(\.\d+)*)$/;
/** gcc options that take their value as the next argument. */
const optionsWithValue = new Set([
  '-o', '-I', '-D', '-U', '-include', '-imacros', '-isystem', '-iquote', '-idirafter', '-MF', '-MT', '-MQ',
  '-x', '-L', '-l', '-T', '-Xlinker', '-Xassembler', '-Xpreprocessor', '-u', '-z', '-aux-info', '-e', '--param',
  '-isysroot', '--sysroot', '-dumpdir', '-dumpbase', '-dumpbase-ext',
]);

/**
 * Turns one wrapper record (cwd, tool, args) into a log entry; null for calls that produce
 * neither an object nor a linked file (preprocessing, version queries, -M only, configure's
 * conftest probes).
 */
export function parseInvocation(tree: string, cwd: string, tool: string, args: readonly string[]): BuildLogEntry | null {
  if (/(^|-)ar$/.test(tool)) return parseArchive(tree, cwd, tool, args);
  let output: string | null = null;
  let mode: 'link' | 'compile' | 'other' = 'link';
  let shared = false;
  const sources: string[] = [];
  const inputs: string[] = [];
  const libDirs: string[] = [];
  const libs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (optionsWithValue.has(arg)) {
      if (arg === '-o') output = args[i + 1] ?? null;
      if (arg === '-L' && args[i + 1] !== undefined) libDirs.push(args[i + 1]);
      if (arg === '-l' && args[i + 1] !== undefined) libs.push(args[i + 1]);
      i++;
      continue;
    }
    if (arg.startsWith('-L') && arg.length > 2) libDirs.push(arg.slice(2));
    if (arg.startsWith('-l') && arg.length > 2) libs.push(arg.slice(2));
    if (arg === '-c') mode = mode === 'other' ? 'other' : 'compile';
    else if (arg === '-E' || arg === '-S' || arg === '-M' || arg === '-MM' || arg === '--version' || arg === '-v' || arg.startsWith('-print-') || arg.startsWith('-dump')) mode = 'other';
    else if (arg === '-shared') shared = true;
    else if (arg.startsWith('-o') && arg.length > 2) output = arg.slice(2);
    else if (arg.startsWith('-')) continue;
    else if (sourceExt.test(arg)) sources.push(arg);
    else if (inputExt.test(arg)) inputs.push(arg);
  }
  if (mode === 'other') return null;
  const abs = (p: string): string => normalize(isAbsolute(p) ? p : resolve(cwd, p));
  const rel = (p: string): string => relative(tree, abs(p));
  const relCwd = relative(tree, cwd) || '.';
  if ([output ?? '', ...sources].some((p) => /(^|\/)conftest[^/]*$/.test(p))) return null;
  if (mode === 'compile') {
    if (sources.length !== 1) return null; // gcc -c a.c b.c without -o: rare; not diffable per object
    const object = output ?? sources[0].replace(/^.*\//, '').replace(sourceExt, '.o');
    return { kind: 'compile', cwd: relCwd, sources: sources.map(rel), object: rel(object), tool, args };
  }
  if (inputs.length === 0 && sources.length === 0) return null;
  return {
    kind: 'link',
    cwd: relCwd,
    output: rel(output ?? 'a.out'),
    inputs: inputs.map(rel),
    sources: sources.map(rel),
    libraryCandidates: libs.flatMap((l) => libDirs.flatMap((d) => [rel(join(d, `lib${l}.a`)), rel(join(d, `lib${l}.so`))])),
    shared,
    tool,
    args,
  };
}

/**
 * `ar` adding members (operations r or q): recorded as a link of the members into the archive.
 * Other operations (t, x, d, s) do not change what an archive holds for us.
 */
function parseArchive(tree: string, cwd: string, tool: string, args: readonly string[]): LinkEntry | null {
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--plugin' || args[i] === '--target') i++;
    else if (!args[i].startsWith('--')) rest.push(args[i]);
  }
  const ops = rest[0]?.replace(/^-/, '') ?? '';
  if (!/^[a-zA-Z]+$/.test(ops) || !/[rq]/.test(ops)) return null;
  // a/b/i take a position member before the archive name; N takes a count.
  let i = 1;
  if (/[abi]/.test(ops)) i++;
  if (/N/.test(ops)) i++;
  const archive = rest[i];
  if (archive === undefined) return null;
  const members = rest.slice(i + 1).filter((m) => /\.(o|lo)$/.test(m) || /\.a$/.test(m));
  const rel = (p: string): string => relative(tree, normalize(isAbsolute(p) ? p : resolve(cwd, p)));
  return { kind: 'link', cwd: relative(tree, cwd) || '.', output: rel(archive), inputs: members.map(rel), sources: [], shared: false, tool, args };
}

/** Reads one NUL-separated record file into its fields; null for a record cut short (killed). */
export async function readRecordFields(file: string): Promise<{ fields: string[]; time: bigint } | null> {
  const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file, { bigint: true })]);
  const fields = text.split('\0');
  fields.pop(); // after the last NUL
  return fields.length < 2 ? null : { fields, time: info.mtimeNs };
}

/**
 * The wrapper records $PWD, which a shell that a build tool started in a folder it chdir'd
 * into spells physically (symbolic links resolved), while the caller may have spelled the
 * tree through a link: both are turned into the physical spelling before paths are made
 * relative, or every path would climb out of the tree ('../../var/cache/…/tree/x.c').
 */
export async function physicalTree(tree: string): Promise<{ physical: string; canonical: (cwd: string) => string }> {
  const physical = await realpath(tree).catch(() => tree);
  const canonical = (cwd: string): string => (cwd === tree || cwd.startsWith(`${tree}/`) ? physical + cwd.slice(tree.length) : cwd);
  return { physical, canonical };
}

/** Where the wrapper's copy of a linked output is kept under a capture folder. */
export function capturedPath(captureDir: string, output: string): string {
  return join(captureDir, output);
}

/**
 * Reads the wrapper's record folder into log entries, in the order the calls finished
 * (r.* under a recorded make, o.* outside one). With `captureDir`, the copies the wrapper
 * kept of linked outputs are moved there (capturedPath; the last link of a file wins), so the
 * binary an object went into is known whatever the build's later steps did to the tree.
 */
export async function readRecords(tree: string, logDir: string, captureDir?: string): Promise<BuildLogEntry[]> {
  const { physical, canonical } = await physicalTree(tree);
  const names = (await readdir(logDir)).filter((n) => /^[ro]\.[^.]+$/.test(n));
  const records: { time: bigint; entry: BuildLogEntry; name: string }[] = [];
  for (const name of names) {
    const record = await readRecordFields(join(logDir, name));
    if (!record) continue;
    const [cwd, tool, ...args] = record.fields;
    const parsed = parseInvocation(physical, canonical(cwd), tool, args);
    if (!parsed) continue;
    const entry: BuildLogEntry = parsed.kind === 'compile' && name.startsWith('o.') ? { ...parsed, outsideMake: true } : parsed;
    records.push({ time: record.time, entry, name });
  }
  records.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  if (captureDir !== undefined) {
    const names = new Set(await readdir(logDir));
    for (const { entry, name } of records) {
      if (entry.kind !== 'link' || !names.has(`${name}.out`) || entry.output.startsWith('..')) continue;
      const dest = capturedPath(captureDir, entry.output);
      await mkdir(dirname(dest), { recursive: true });
      await rename(join(logDir, `${name}.out`), dest);
    }
  }
  return records.map((r) => r.entry);
}

export async function writeBuildLog(path: string, entries: readonly BuildLogEntry[]): Promise<void> {
  await writeFile(path, entries.map((e) => JSON.stringify(e)).join('\n') + (entries.length ? '\n' : ''));
}

export async function readBuildLog(path: string): Promise<BuildLogEntry[]> {
  const text = await readFile(path, 'utf8');
  return text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as BuildLogEntry);
}

/**
 * The link map: for each object, the files (executables, shared objects) it ends up in.
 * Follows static archives and partial links (`ld -r` through gcc -r) transitively.
 */
/**
 * The libraries this build made that a link's -lNAME options took, as the linker chooses: per
 * NAME the first -L folder holding lib<NAME>.so or lib<NAME>.a, the shared one first unless the
 * link is static (-static, -Wl,-Bstatic). A shared library is usually linked as lib<NAME>.so.N
 * and reached through a symbolic link lib<NAME>.so that no recorded link wrote, so a versioned
 * output in that folder stands for it (cups: -lcups takes libcups.so.2, not libcups.a, so
 * cupsd does not contain libcups' objects).
 */
function chosenLibraries(e: LinkEntry, outputs: ReadonlySet<string>): string[] {
  const isStatic = e.args.some((a) => a === '-static' || /(^|,)-Bstatic\b/.test(a));
  const byName = new Map<string, string[]>();
  for (const c of e.libraryCandidates ?? []) {
    const name = basename(c).replace(/\.(a|so)$/, '');
    byName.set(name, [...(byName.get(name) ?? []), c]);
  }
  const shared = (candidate: string): string | null => {
    if (outputs.has(candidate)) return candidate;
    for (const o of outputs) if (o.startsWith(`${candidate}.`) && /^\d+(\.\d+)*$/.test(o.slice(candidate.length + 1))) return o;
    return null;
  };
  const chosen: string[] = [];
  for (const candidates of byName.values()) {
    const dirs = [...new Set(candidates.map((c) => dirname(c)))];
    for (const dir of dirs) {
      const archive = candidates.find((c) => dirname(c) === dir && c.endsWith('.a'));
      const so = candidates.find((c) => dirname(c) === dir && c.endsWith('.so'));
      const got = isStatic ? (archive && outputs.has(archive) ? archive : null) : ((so ? shared(so) : null) ?? (archive && outputs.has(archive) ? archive : null));
      if (got) {
        chosen.push(got);
        break;
      }
    }
  }
  return chosen;
}

export function linkMap(entries: readonly BuildLogEntry[]): Map<string, string[]> {
  const consumers = new Map<string, Set<string>>();
  const intermediate = new Set<string>();
  const outputs = new Set(entries.flatMap((e) => (e.kind === 'link' ? [e.output] : [])));
  for (const e of entries) {
    if (e.kind !== 'link') continue;
    const fromLibs = chosenLibraries(e, outputs);
    for (const input of [...e.inputs, ...fromLibs]) {
      const set = consumers.get(input) ?? new Set<string>();
      set.add(e.output);
      consumers.set(input, set);
    }
    if (/\.(o|a|lo)$/.test(e.output)) intermediate.add(e.output);
  }
  const finals = (file: string, seen: Set<string>): string[] => {
    if (seen.has(file)) return [];
    seen.add(file);
    const out: string[] = [];
    for (const next of consumers.get(file) ?? []) {
      if (intermediate.has(next)) out.push(...finals(next, seen));
      else out.push(next);
    }
    return out;
  };
  const map = new Map<string, string[]>();
  for (const e of entries) {
    if (e.kind !== 'compile') continue;
    map.set(e.object, [...new Set(finals(e.object, new Set()))].sort());
  }
  return map;
}

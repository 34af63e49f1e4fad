/**
 * Archive members a patched object newly needs. A fix may call a function whose object sits in
 * an archive the binary links but that the linker never pulled in, because nothing referenced it
 * before (nfs-utils: cache.c's dump_to_cache now calls replicas_lookup() from fsloc.o in
 * libexport.a; rpc.mountd holds cache.o but not fsloc.o). The linker would pull the member in
 * when relinking the fixed program, so the patch carries it: the member is `ld -r`-ed onto the
 * patched object and its functions become new functions of the patch.
 */
import { basename, join } from 'node:path';
import { execa } from 'execa';
import type { BuildLogEntry } from '../wrapper/index.ts';
import { linkMap } from '../wrapper/index.ts';
import { holdsUnit } from './members.ts';

export interface CarriedMember {
  /** Tree-relative object path, e.g. "support/export/fsloc.o". */
  readonly object: string;
  /** Absolute path of the object to carry. */
  readonly path: string;
  /** The wanted symbols it defines. */
  readonly defines: readonly string[];
}

/** Looks up members for one binary: the unresolved global names in, the members to carry out. */
export type MemberFinder = (unresolved: readonly string[]) => Promise<readonly CarriedMember[]>;

const definedCache = new Map<string, Promise<Set<string>>>();

/** Global symbols an object defines (nm --defined-only -g). */
function definedGlobals(object: string): Promise<Set<string>> {
  let got = definedCache.get(object);
  if (!got) {
    got = execa('nm', ['--defined-only', '-g', '-P', object], { reject: false }).then((r) => {
      if (r.exitCode !== 0) return new Set<string>();
      // -P: "name type value size"; weak (W/V) definitions do not satisfy a reference the way the
      // linker pulls members for, so only strong ones count.
      return new Set(
        r.stdout
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f.length >= 2 && /^[TDBRGS]$/.test(f[1]!))
          .map((f) => f[0]!),
      );
    });
    definedCache.set(object, got);
  }
  return got;
}

export interface FinderInput {
  /** The original build's log: which objects end up in which linked files. */
  readonly log: readonly BuildLogEntry[];
  /** Where the members are taken from (the patched build's tree: a member the patch also changed is carried as patched). */
  readonly tree: string;
  /** The binary, as the build log names it (tree-relative). */
  readonly binary: string;
  /** The original binary's file, to tell which units it holds. */
  readonly binaryPath: string;
}

/**
 * Members of the archives `binary` links whose unit the binary does not hold, that define the
 * wanted names — in the build log's order, the first definer of each name (as the linker takes
 * the first archive member that resolves a symbol).
 */
export function memberFinder(input: FinderInput): MemberFinder {
  const map = linkMap(input.log);
  const sources = new Map(input.log.flatMap((e) => (e.kind === 'compile' ? [[e.object, e.sources[0] ?? e.object] as const] : [])));
  let pool: Promise<string[]> | null = null;
  const members = (): Promise<string[]> => {
    pool ??= (async () => {
      const out: string[] = [];
      for (const [object, finals] of map) {
        if (!finals.includes(input.binary)) continue;
        const source = sources.get(object) ?? object;
        // Directly linked objects are always in the binary; only a member left out says false.
        if ((await holdsUnit(input.binaryPath, source)) === false) out.push(object);
      }
      return out;
    })();
    return pool;
  };
  return async (unresolved) => {
    const wanted = new Set(unresolved);
    const found = new Map<string, string[]>();
    for (const object of await members()) {
      if (wanted.size === 0) break;
      const defined = await definedGlobals(join(input.tree, object));
      const hits = [...wanted].filter((s) => defined.has(s));
      if (!hits.length) continue;
      found.set(object, hits);
      for (const s of hits) wanted.delete(s);
    }
    return [...found].map(([object, defines]) => ({ object, path: join(input.tree, object), defines }));
  };
}

/** `ld -r PATCHED MEMBERS… -o OUT`: the patched object first, so its STT_FILE block comes first. */
export async function combine(patched: string, members: readonly CarriedMember[], out: string): Promise<void> {
  await execa('ld', ['-r', '-o', out, patched, ...members.map((m) => m.path)], { stdin: 'ignore' });
}

export function carriedNote(object: string, binary: string, members: readonly CarriedMember[]): string {
  const list = members.map((m) => `${m.object} (defines ${m.defines.join(', ')})`).join('; ');
  return `${object}: the patched code calls into archive member(s) ${binary} never linked — carried in its patch for ${basename(binary)}, their functions new: ${list}`;
}

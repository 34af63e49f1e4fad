/**
 * Whether a linked binary holds the unit an object was compiled from. The link map follows an
 * archive into every binary that links it, but the linker pulls in only the members that
 * resolve a symbol (nfs-utils' libexport.a: cache.o is in rpc.mountd, not in exportfs). The
 * binary's .symtab names each C/C++ unit it holds with an STT_FILE symbol (the source's base
 * name; wfbuild builds with nostrip), so a binary whose FILE symbols do not name the source did
 * not take the object in.
 */
import { basename } from 'node:path';
import { execa } from 'execa';

const unitsOf = new Map<string, Promise<Set<string> | null>>();

/** STT_FILE names of a binary; null when it has none (stripped, or unreadable). */
function fileSymbols(binary: string): Promise<Set<string> | null> {
  let units = unitsOf.get(binary);
  if (!units) {
    units = execa('readelf', ['-sW', binary], { reject: false }).then((r) => {
      if (r.exitCode !== 0) return null;
      const names = r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[3] === 'FILE' && f[7] !== undefined).map((f) => f[7]);
      return names.length > 0 ? new Set(names) : null;
    });
    unitsOf.set(binary, units);
  }
  return units;
}

/** False only when the binary surely lacks the unit; null when it cannot tell (no FILE symbols, assembler source). */
export async function holdsUnit(binary: string, source: string): Promise<boolean | null> {
  // Assembler sources have an STT_FILE only when they say `.file`: no evidence either way.
  if (/\.(s|S|sx)$/.test(source)) return null;
  const units = await fileSymbols(binary);
  return units === null ? null : units.has(basename(source));
}

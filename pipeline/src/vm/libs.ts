import { open } from 'node:fs/promises';
import { execa } from 'execa';
import { UserError } from '../cli/errors.ts';

async function isElf(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return bytesRead === 4 && buffer.toString('latin1') === '\x7fELF';
  } finally {
    await handle.close();
  }
}

/**
 * Parses ldd output into absolute library paths (including the dynamic loader); the vDSO
 * has no file and is skipped. A library ldd cannot find is an error naming it.
 */
export function parseLdd(file: string, output: string): string[] {
  const paths: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    const arrow = /^(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$/.exec(line);
    if (arrow) {
      if (arrow[2] === 'not found') throw new UserError(`${file} needs ${arrow[1]}, which is not installed on this host`);
      if (arrow[2].startsWith('/')) paths.push(arrow[2]);
      continue;
    }
    const direct = /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    if (direct) paths.push(direct[1]);
  }
  return paths;
}

/**
 * The shared libraries (and dynamic loader) the given files need, transitively, as host
 * paths. ldd follows DT_NEEDED, RUNPATH and the loader's search rules exactly as the guest
 * loader will at the same paths. Static executables, relocatable objects and non-ELF files
 * need nothing.
 */
export async function sharedLibraries(files: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const file of files) {
    if (!(await isElf(file))) continue;
    const result = await execa('ldd', [file], { reject: false, all: true, env: { LC_ALL: 'C' } });
    const output = result.all ?? '';
    if (result.exitCode !== 0 || /not a dynamic executable|statically linked/.test(output)) continue;
    for (const lib of parseLdd(file, output)) found.add(lib);
  }
  return [...found].sort();
}

/**
 * Confirming waf (Samba) units against linked files (pipeline/src/corpus/compile-only/built-copy.ts):
 * which of the build's links are built for a unit. The build itself (hours of Samba on two
 * cores) runs in the corpus run (`wfbuild corpus --packages samba`), not here.
 */
import { describe, expect, it } from 'vitest';
import { linksFor, type WafLink } from '../pipeline/src/corpus/compile-only/built-copy.ts';

const services = { longRunning: ['^(smbd|samba)$', '\\.so(\\.|$)'], programs: [], note: '' };

const links: WafLink[] = [
  { target: 'service_nbtd', output: 'bin/default/source4/nbt_server/libservice_module_nbtd.so', sources: ['source4/nbt_server/wins/wins_hook.c', 'source4/nbt_server/nbt_server.c'] },
  { target: 'service_wrepl', output: 'bin/default/source4/wrepl_server/libservice_module_wrepl.so', sources: ['source4/nbt_server/wins/wins_hook.c'] },
  { target: 'smbtorture', output: 'bin/default/source4/torture/smbtorture', sources: ['source4/nbt_server/wins/wins_hook.c', 'source4/torture/vfs/vfs.c'] },
  { target: 'smbd', output: 'bin/default/source3/smbd/smbd', sources: ['source3/smbd/server.c'] },
];

describe('linksFor', () => {
  it('takes every long-running link of a changed source, a subsystem linked into several modules included', () => {
    expect(linksFor(links, ['source4/nbt_server/wins/wins_hook.c'], services).map((l) => l.target)).toEqual(['service_nbtd', 'service_wrepl']);
  });

  it('leaves out programs that are not long-running, and links that take none of the sources', () => {
    expect(linksFor(links, ['source4/torture/vfs/vfs.c'], services)).toEqual([]);
    expect(linksFor(links, ['source3/smbd/server.c', 'lib/none.c'], services).map((l) => l.output)).toEqual(['bin/default/source3/smbd/smbd']);
  });

  it('takes every link of the sources when the package names no services', () => {
    expect(linksFor(links, ['source4/torture/vfs/vfs.c'], undefined).map((l) => l.target)).toEqual(['smbtorture']);
  });
});

describe('linkStrategyOf', () => {
  it('links waf profiles target by target, gyp make profiles by their whole goal, cmake not at all', async () => {
    const { linkStrategyOf, profiles } = await import('../pipeline/src/corpus/compile-only/index.ts');
    const samba = linkStrategyOf(profiles.samba!)!;
    expect(samba.lists).toBe(true);
    expect(samba.argv(['service_nbtd', 'ldb_dirsync'], 2)).toEqual(['python3', 'buildtools/bin/waf', 'build', '-j2', '--targets=service_nbtd,ldb_dirsync']);
    const node = linkStrategyOf(profiles.nodejs!)!;
    expect(node.lists).toBe(false);
    // the goal the compile database was read from (make -n), without its verbosity
    expect(node.argv([], 2)).toEqual(['make', '-C', 'out', '-j2', 'BUILDTYPE=Release']);
    expect(node.configuration).toBe('out/Makefile');
    expect(linkStrategyOf(profiles.mariadb!)).toBeNull();
  });
});

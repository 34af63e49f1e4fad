/** Which libwfpatch processes a patch is for: those with a loaded module of its build-id. */
import { controlRequest } from '../apply/client.ts';
import { libwfpatchPids } from './discover.ts';

export async function pidsWithBuildId(buildId: string, timeoutMs = 10_000): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await libwfpatchPids()) {
    const r = await controlRequest(pid, 'inventory', { timeoutMs }).catch(() => null);
    const inv = r?.events.at(-1);
    const modules = (inv?.event === 'inventory' ? inv.modules : []) as { build_id: string }[];
    if (modules.some((m) => m.build_id === buildId)) found.push(pid);
  }
  return found;
}

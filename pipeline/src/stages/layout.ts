import { execa } from 'execa';

/**
 * Data layout check. create-diff-object compares code and global data, but a patch that
 * changes a struct (a member added to a header's struct, say) changes the layout of data the
 * running process already holds — not text-only by the prototype's definition — while the
 * changed functions alone look like an ordinary code patch. The objects' DWARF (the builds
 * keep -g) has every struct and union a translation unit uses; pahole prints their layouts.
 */

export interface TypeLayout {
  /** e.g. "struct mcp_parser_s", or "typedef struct … name". */
  readonly name: string;
  readonly size: number | null;
  /** member name → [offset, size] in bytes (bit fields by their containing bytes). */
  readonly members: ReadonlyMap<string, readonly [number, number]>;
  /**
   * Names, offsets and sizes of every member (nested ones too) and the total size, without
   * the member types: a type renamed but laid out the same (int → int32_t) is no change.
   */
  readonly signature: string;
}

export interface LayoutChange {
  readonly type: string;
  readonly what: string;
}

/** Parses pahole's output into top-level named structs and unions. */
export function parseLayouts(output: string): Map<string, TypeLayout> {
  const layouts = new Map<string, TypeLayout>();
  const lines = output.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^((?:typedef )?(?:struct|union)(?: (\S+))?) \{$/.exec(lines[i]);
    if (!open) continue;
    let j = i + 1;
    while (j < lines.length && !/^\}/.test(lines[j])) j++;
    if (j >= lines.length) break;
    const closer = /^\}\s*([A-Za-z_]\w*)?.*;$/.exec(lines[j]);
    const name = open[2] ? open[1] : closer?.[1] ? `${open[1]} … ${closer[1]}` : null;
    const body = lines.slice(i + 1, j);
    i = j;
    if (name === null) continue; // anonymous: nothing to correlate it by
    const members = new Map<string, readonly [number, number]>();
    const signature: string[] = [];
    let depth = 0;
    for (const line of body) {
      if (/^\s*\}/.test(line)) depth--;
      const member = /^\s+(?!\/\*)(?:.*?)([A-Za-z_]\w*)?(?:\[[^\]]*\])*(?::\d+)?;\s*\/\*\s*(\d+)(:\d+)?\s+(\d+)\s*\*\//.exec(line);
      if (member) {
        signature.push(`${depth}:${member[1] ?? '?'}@${member[2]}${member[3] ?? ''}+${member[4]}`);
        if (depth === 0 && member[1]) members.set(member[1], [Number(member[2]), Number(member[4])]);
      }
      if (/\{\s*$/.test(line)) depth++;
    }
    const size = /\/\* size: (\d+)/.exec(body.join('\n'));
    signature.push(`size ${size?.[1] ?? '?'}`);
    layouts.set(name, { name, size: size ? Number(size[1]) : null, members, signature: signature.join('\n') });
  }
  return layouts;
}

/** What differs between two layouts of one type, in a few words. */
export function describeChange(before: TypeLayout, after: TypeLayout): string {
  const parts: string[] = [];
  if (before.size !== after.size) parts.push(`size ${before.size} → ${after.size} bytes`);
  const added = [...after.members.keys()].filter((m) => !before.members.has(m));
  const removed = [...before.members.keys()].filter((m) => !after.members.has(m));
  const moved = [...after.members.entries()]
    .filter(([m, [off, size]]) => before.members.has(m) && (before.members.get(m)![0] !== off || before.members.get(m)![1] !== size))
    .map(([m, [off, size]]) => {
      const [o0, s0] = before.members.get(m)!;
      return o0 !== off ? `${m} offset ${o0} → ${off}` : `${m} size ${s0} → ${size}`;
    });
  if (added.length) parts.push(`member${added.length > 1 ? 's' : ''} ${added.join(', ')} added`);
  if (removed.length) parts.push(`member${removed.length > 1 ? 's' : ''} ${removed.join(', ')} removed`);
  if (moved.length) parts.push(moved.slice(0, 4).join(', ') + (moved.length > 4 ? ', …' : ''));
  return parts.length ? parts.join('; ') : 'member types or layout changed';
}

/** Layouts in an object file; null when it has no usable DWARF (then nothing can be said). */
export async function objectLayouts(object: string): Promise<Map<string, TypeLayout> | null> {
  const result = await execa('pahole', [object], { reject: false });
  if (result.exitCode !== 0 || result.stdout.trim() === '') return null;
  return parseLayouts(result.stdout);
}

/**
 * Types present in both objects whose layout differs. Types only in the patched object are
 * new (no existing data has them); types only in the original are no longer used here.
 */
export function compareLayouts(before: Map<string, TypeLayout>, after: Map<string, TypeLayout>): LayoutChange[] {
  const changes: LayoutChange[] = [];
  for (const [name, old] of before) {
    const now = after.get(name);
    if (now && now.signature !== old.signature) changes.push({ type: name, what: describeChange(old, now) });
  }
  return changes;
}

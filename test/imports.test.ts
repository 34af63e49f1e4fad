/**
 * The import graph of pipeline/src has no cycle: a module can be read (and loaded) after the
 * ones it imports. Static and dynamic imports of relative .ts files both count.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../pipeline/src/paths.ts';

const root = join(repoRoot, 'pipeline/src');

/** Relative .ts specifiers a module imports: `import … from`, `export … from`, `import('…')`. */
function importsOf(text: string): string[] {
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]!);
  return specs.filter((s) => s.startsWith('.') && s.endsWith('.ts'));
}

async function importGraph(): Promise<Map<string, string[]>> {
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = await readFile(join(root, file), 'utf8');
    graph.set(file, importsOf(text).map((s) => relative(root, resolve(root, dirname(file), s))));
  }
  return graph;
}

/** Every cycle found by a depth-first walk, each as the modules along it. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}

describe('pipeline/src import graph', () => {
  it('finds imports and cycles (the checker itself)', () => {
    expect(importsOf("import { a } from './a.ts';\nimport type { B } from '../b.ts';\nexport { c } from './c.ts';\nconst d = await import('./d.ts');\nimport { x } from 'node:fs';")).toEqual(['./a.ts', '../b.ts', './c.ts', './d.ts']);
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c', 'a']]);
    expect(cycles(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]]))).toEqual([]);
  });

  it('has no import cycle', async () => {
    const graph = await importGraph();
    expect(graph.size).toBeGreaterThan(50);
    for (const [file, imports] of graph) for (const target of imports) expect(graph.has(target), `${file} imports ${target}, which does not exist`).toBe(true);
    expect(cycles(graph).map((c) => c.join(' → '))).toEqual([]);
  });
});

/** The last `lines` lines of a tool's output: what an error message quotes. */
export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

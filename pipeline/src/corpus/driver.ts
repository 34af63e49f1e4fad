import { ExitCode } from '../cli/errors.ts';
export async function runCorpus(_args: string[]): Promise<number> {
  console.error('wfbuild corpus: the driver is not written yet');
  return ExitCode.internal;
}

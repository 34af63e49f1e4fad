import { UserError } from './errors.ts';

/**
 * An integer option (`--jobs 4`): undefined when not given, else a whole number in
 * [min, max], or a UserError naming the option.
 */
export function intOption(name: string, value: string | undefined, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'a positive integer' : `an integer of at least ${min}`) : `an integer from ${min} to ${max}`;
    throw new UserError(`--${name} must be ${range}, got '${value}'`);
  }
  return n;
}

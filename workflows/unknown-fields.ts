/**
 * The one check every workflow input gets for fields it does not define (a typo in the UI's start form, a script's
 * stale field): named, at most five, each cut to 40 characters, so a hostile key cannot flood the failure.
 */
export function unknownFieldProblems(input: object, fields: readonly string[]): string[] {
  const extra = Object.keys(input).filter((k) => !fields.includes(k));
  if (!extra.length) return [];
  return [
    `input: unknown field ${extra
      .slice(0, 5)
      .map((k) => `"${k.slice(0, 40)}"`)
      .join(', ')} (expected ${fields.join(', ')})`,
  ];
}

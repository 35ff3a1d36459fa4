/**
 * Remote commands are built from argument vectors and quoted here, never by pasting strings: a path with a space or a
 * `$(...)` in it stays one literal argument.
 */
export function quote(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function command(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('command: empty argument vector');
  return argv.map(quote).join(' ');
}

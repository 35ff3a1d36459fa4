import type { Argument, Command, Option } from 'commander';
import { buildProgram } from '../cli/main';
import { code, page, prose, table } from './markdown';

const defaultOf = (v: unknown) => (v === undefined ? '' : code(JSON.stringify(v)));

function optionRows(options: readonly Option[]): string[][] {
  return options.map((o) => [code(o.flags), o.description, o.mandatory ? 'required' : defaultOf(o.defaultValue)]);
}

function argumentRows(args: readonly Argument[]): string[][] {
  return args.map((a) => [
    code(`${a.required ? '<' : '['}${a.name()}${a.variadic ? '...' : ''}${a.required ? '>' : ']'}`),
    a.description,
    a.required ? 'required' : defaultOf(a.defaultValue),
  ]);
}

function section(cmd: Command, parents: string[], out: string[]): void {
  const path = [...parents, cmd.name()];
  if (parents.length) {
    const leaf = cmd.commands.length === 0;
    out.push(`${'#'.repeat(Math.min(parents.length + 1, 4))} ${path.join(' ')}`, '');
    out.push(prose(cmd.description()), '');
    if (leaf) out.push('```', `${path.join(' ')} ${cmd.usage()}`, '```', '');
    if (cmd.registeredArguments.length) out.push(...table(['argument', 'meaning', 'default'], argumentRows(cmd.registeredArguments)), '');
    if (cmd.options.length) out.push(...table(['option', 'meaning', 'default'], optionRows(cmd.options)), '');
  }
  for (const sub of cmd.commands) section(sub, path, out);
}

/** docs/reference/cli.md: every command of `lifeboat`, read from the commander program the binary runs. */
export function cliReference(): string {
  const program = buildProgram();
  const body: string[] = [prose(program.description()), '', '```', `lifeboat ${program.usage()}`, '```', ''];
  body.push('Options of every command:', '', ...table(['option', 'meaning', 'default'], optionRows(program.options)), '');
  section(program, [], body);
  while (body[body.length - 1] === '') body.pop();
  return page(
    'CLI reference',
    'Every `lifeboat` command with its arguments, options and defaults. What each is for, in a sentence: [CLI](../cli.md). Every command also has `--help`.',
    'the commander definitions in src/cli/',
    body,
  );
}

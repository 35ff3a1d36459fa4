/** Markdown helpers for the generated reference pages: one table shape, cells escaped, one header line. */

/** A cell's text on one line, with the table's own `|` escaped (and `<` as in prose). */
export function cell(text: string): string {
  return prose(text.replace(/\r?\n\s*/g, ' ')).replace(/\|/g, '\\|');
}

/** Text from the code as a paragraph: `<` outside code spans written as `&lt;` (`recover-<cluster>` stays visible). */
export function prose(text: string): string {
  return text
    .split(/(`+[^`]*`+)/)
    .map((part, i) => (i % 2 ? part : part.replace(/</g, '&lt;')))
    .join('');
}

/** Inline code, with a longer fence when the text itself holds a backtick. */
export function code(text: string): string {
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

export function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

/** Every generated page opens with what it is and how it is made, so nobody edits it by hand. */
export function page(title: string, intro: string, from: string, body: string[]): string {
  return [
    `# ${title}`,
    '',
    intro,
    '',
    `<!-- Generated from ${from} by \`npm run docs:gen\`: do not edit by hand; a unit test fails when it is out of date. -->`,
    '',
    ...body,
    '',
  ].join('\n');
}

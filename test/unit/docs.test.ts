import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { generatedPages } from '../../src/docs/pages';

const root = resolve(__dirname, '../..');

/** README.md and every page under docs/, as repository-relative paths. */
function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : n.endsWith('.md') ? [p] : [];
    });
  return ['README.md', ...walk(join(root, 'docs')).map((p) => relative(root, p))];
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as "-"; repeats get -1, -2, ... */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n ? `${base}-${n}` : base);
  }
  return anchors;
}

/** Relative links of a page, outside code: [text](target), targets without a scheme. */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

describe('the docs', () => {
  it('generated reference pages are what the code generates now', async () => {
    const stale: string[] = [];
    for (const p of await generatedPages(root)) {
      const file = join(root, p.path);
      const committed = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
      if (committed !== p.content)
        stale.push(`${p.path} ${committed === undefined ? 'is missing' : 'differs from what the code generates'}`);
    }
    expect(stale.length ? `${stale.join('; ')}: run \`npm run docs:gen\` and commit the result` : 'up to date').toBe('up to date');
  });

  it('generating twice gives the same pages (deterministic)', async () => {
    expect(await generatedPages(root)).toEqual(await generatedPages(root));
  });

  it('every relative link in README.md and docs/ points to a file that exists, and to a heading that exists', () => {
    const broken: string[] = [];
    for (const file of markdownFiles()) {
      for (const link of relativeLinks(readFileSync(join(root, file), 'utf8'))) {
        const [path, anchor] = link.split('#', 2);
        const target = path ? resolve(root, dirname(file), path) : join(root, file);
        if (!existsSync(target)) {
          broken.push(`${file}: ${link} (no such file)`);
          continue;
        }
        if (anchor && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(anchor))
          broken.push(`${file}: ${link} (no heading #${anchor} in ${relative(root, target)})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the link check finds a missing file and a missing heading (it can fail)', () => {
    expect(anchorsOf('# Continuous backups (`npm run bench:continuous`)\n## A\n## A\n```\n# not a heading\n```')).toEqual(
      new Set(['continuous-backups-npm-run-benchcontinuous', 'a', 'a-1']),
    );
    expect(relativeLinks('see [x](docs/nope.md#y) and [web](https://example.com) and `[c](code.md)`')).toEqual(['docs/nope.md#y']);
  });
});

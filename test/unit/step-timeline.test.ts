import { stepTimelineSvg } from '../../src/recovery/step-timeline';
import type { RecoveryStepStatus } from '../../src/recovery/plan';

/** The recovery report's step timeline: bars placed and sized by the steps' recorded times, nothing else. */

const at = (s: number) => new Date(Date.UTC(2026, 11, 3, 12, 0, 0) + s * 1000).toISOString();
const bars = (svg: string) =>
  [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"[^>]*><title>([^<]*)<\/title>/g)].map((m) => ({
    x: Number(m[1]),
    width: Number(m[2]),
    title: m[3],
  }));

describe('stepTimelineSvg', () => {
  const steps: RecoveryStepStatus[] = [
    { step: 'plan', status: 'done', startedAt: at(0), endedAt: at(2) },
    { step: 'approval', status: 'done', startedAt: at(2), endedAt: at(10) },
    { step: 'restore', status: 'failed', startedAt: at(10), endedAt: at(12), detail: 'etcd <did not> start & "quit"' },
    { step: 'verify', status: 'pending' },
  ];

  it('draws one bar per timed step, placed and sized by its start and end', () => {
    const svg = stepTimelineSvg(steps);
    const [plan, approval, restore] = bars(svg);
    expect(bars(svg)).toHaveLength(3);
    expect(approval.width / plan.width).toBeCloseTo(4, 1);
    expect(restore.width).toBeCloseTo(plan.width, 1);
    expect(approval.x).toBeCloseTo(plan.x + plan.width, 0); // starts where plan ended
    expect(restore.x).toBeCloseTo(approval.x + approval.width, 0);
    expect(svg).toContain('Recovery steps (12.0 s)');
    expect(svg).toContain('>8.0 s<'); // approval's duration beside its bar
    expect(svg).toMatch(/fill="#c0392b"><title>restore: failed/); // a failed step in red
    // A step that never ran keeps its row, with its status and no bar.
    expect(svg).toMatch(/>verify<\/text>\n<text [^>]*font-style="italic">pending</);
  });

  it('escapes what the steps say, and the same steps give the same picture', () => {
    const svg = stepTimelineSvg(steps, 'Recovery of <prod>');
    expect(svg).toContain('etcd &lt;did not&gt; start &amp; &quot;quit&quot;');
    expect(svg).toContain('Recovery of &lt;prod&gt;');
    expect(svg).not.toMatch(/<did not>|<prod>/);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(stepTimelineSvg(steps, 'Recovery of <prod>')).toBe(svg);
  });

  it('long runs read in minutes; no timed step at all still gives a picture of the rows', () => {
    const long = stepTimelineSvg([{ step: 'restore', status: 'done', startedAt: at(0), endedAt: at(125) }]);
    expect(long).toContain('Recovery steps (2 min 05 s)');
    expect(long).toContain('>2 min<'); // an axis tick
    const none = stepTimelineSvg([{ step: 'plan', status: 'skipped' }]);
    expect(bars(none)).toEqual([]);
    expect(none).toContain('>skipped<');
  });
});

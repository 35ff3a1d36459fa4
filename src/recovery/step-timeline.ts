import type { RecoveryStepStatus } from './plan';

/**
 * A recovery's steps as a picture: one row per step, a bar from its start to its end on a shared time axis, so where
 * the minutes went (the approval wait, the restore, the API coming back) shows at a glance. An SVG string, built only
 * from the steps' recorded times: the same steps give the same picture. Steps that never ran (pending, or skipped
 * without times) keep their row, with their status instead of a bar.
 */

const ROW = 26;
const LABEL = 190;
const BAR_AREA = 560;
const RIGHT = 90;
const TOP = 44;
const WIDTH = LABEL + BAR_AREA + RIGHT;

const COLORS: Record<RecoveryStepStatus['status'], string> = {
  done: '#3b8b59',
  failed: '#c0392b',
  compensated: '#d68910',
  running: '#2e86c1',
  skipped: '#aab2bd',
  pending: '#aab2bd',
};

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** Seconds as a person reads them: 0.4 s, 12.3 s, 2 min 05 s. */
function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${String(Math.round(seconds - m * 60)).padStart(2, '0')} s`;
}

/** A tick step (in seconds) that puts 4 to 10 ticks on an axis of `total` seconds. */
function tickStep(total: number): number {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) if (total / s <= 10) return s;
  return Math.ceil(total / 10 / 3600) * 3600;
}

export function stepTimelineSvg(steps: RecoveryStepStatus[], title = 'Recovery steps'): string {
  const timed = steps.flatMap((s) => {
    const start = s.startedAt ? Date.parse(s.startedAt) : NaN;
    const end = s.endedAt ? Date.parse(s.endedAt) : NaN;
    return Number.isFinite(start) && Number.isFinite(end) && end >= start ? [{ step: s, start, end }] : [];
  });
  const t0 = timed.length ? Math.min(...timed.map((t) => t.start)) : 0;
  const total = timed.length ? Math.max(1, (Math.max(...timed.map((t) => t.end)) - t0) / 1000) : 1;
  const x = (ms: number) => LABEL + ((ms - t0) / 1000 / total) * BAR_AREA;
  const height = TOP + steps.length * ROW + 34;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${escapeXml(title)}${timed.length ? ` (${duration(total)})` : ''}</text>`,
  ];
  const axisY = TOP + steps.length * ROW + 6;
  const tick = tickStep(total);
  for (let t = 0; t <= total + 1e-9; t += tick) {
    const tx = (LABEL + (t / total) * BAR_AREA).toFixed(1);
    out.push(`<line x1="${tx}" y1="${TOP - 6}" x2="${tx}" y2="${axisY}" stroke="#e5e8ec"/>`);
    out.push(`<text x="${tx}" y="${axisY + 16}" text-anchor="middle" fill="#555">${t < 60 ? `${t} s` : `${t / 60} min`}</text>`);
  }
  steps.forEach((s, i) => {
    const y = TOP + i * ROW;
    out.push(`<text x="10" y="${y + 17}">${escapeXml(s.step)}</text>`);
    const t = timed.find((x) => x.step === s);
    if (!t) {
      out.push(`<text x="${LABEL + 4}" y="${y + 17}" fill="#777" font-style="italic">${escapeXml(s.status)}</text>`);
      return;
    }
    const x1 = x(t.start);
    const w = Math.max(1.5, x(t.end) - x1);
    const seconds = (t.end - t.start) / 1000;
    out.push(
      `<rect x="${x1.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW - 8}" rx="2" fill="${COLORS[s.status]}">` +
        `<title>${escapeXml(`${s.step}: ${s.status}, ${duration(seconds)}${s.detail ? ` (${s.detail})` : ''}`)}</title></rect>`,
    );
    out.push(`<text x="${(x1 + w + 6).toFixed(1)}" y="${y + 17}" fill="#333">${duration(seconds)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

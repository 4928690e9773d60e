// Renders the report's blocks to Markdown (charts as linked SVG files beside it) and to
// one self-contained HTML file (charts inline, styles inline, no external requests), and
// writes report.json, report.md, report.html and charts/*.svg into a directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDocument, type Block } from './report-doc.js';
import type { DecisionItem, SpikeReport } from './model.js';

const mdCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function mdDecision(items: DecisionItem[]): string {
  return items.map((d, i) => `${i + 1}. **${d.statement}**\n   - Rule: ${d.rule}${d.evidence.map((e) => `\n   - ${e}`).join('')}`).join('\n');
}

export function renderMarkdown(report: SpikeReport, blocks: Block[] = buildDocument(report)): string {
  const out: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case 'h':
        out.push(`${'#'.repeat(b.level)} ${b.text}`);
        break;
      case 'p':
        out.push(b.text);
        break;
      case 'list':
        out.push(b.items.map((i) => `- ${i}`).join('\n'));
        break;
      case 'table':
        out.push([`| ${b.headers.map(mdCell).join(' | ')} |`, `| ${b.headers.map(() => '---').join(' | ')} |`, ...b.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n'));
        break;
      case 'chart':
        out.push(`![${b.chart.title}](charts/${b.chart.id}.svg)\n\n*${b.chart.caption}*`);
        break;
      case 'decision':
        out.push(mdDecision(b.items));
        break;
    }
  }
  return out.join('\n\n') + '\n';
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** Inline code spans and bold as in the Markdown, the only markup the blocks use. */
const inline = (s: string): string => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

const CSS = `
body{font:14px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;color:#111;max-width:1200px;margin:24px auto;padding:0 16px}
h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:16px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12.5px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.PASS{color:#15803d;font-weight:600}td.FAIL{color:#b91c1c;font-weight:600}td.INVALID{color:#6b7280;font-weight:600}
figure{margin:16px 0}figcaption{color:#555;font-size:12.5px;max-width:760px}code{background:#f3f4f6;padding:0 3px;border-radius:3px}
ol.decision>li{margin-bottom:10px}ol.decision .rule{color:#374151}ol.decision ul{margin:2px 0;color:#4b5563;font-size:12.5px}
.scroll{overflow-x:auto}`;

function htmlDecision(items: DecisionItem[]): string {
  return `<ol class="decision">${items.map((d) => `<li><strong>${inline(d.statement)}</strong><div class="rule">Rule: ${inline(d.rule)}</div>${d.evidence.length ? `<ul>${d.evidence.map((e) => `<li>${inline(e)}</li>`).join('')}</ul>` : ''}</li>`).join('')}</ol>`;
}

export function renderHtml(report: SpikeReport, blocks: Block[] = buildDocument(report)): string {
  const body: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case 'h':
        body.push(`<h${b.level}>${inline(b.text)}</h${b.level}>`);
        break;
      case 'p':
        body.push(`<p>${inline(b.text)}</p>`);
        break;
      case 'list':
        body.push(`<ul>${b.items.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`);
        break;
      case 'table':
        body.push(
          `<div class="scroll"><table><thead><tr>${b.headers.map((h) => `<th>${inline(h)}</th>`).join('')}</tr></thead><tbody>${b.rows
            .map((r) => `<tr>${r.map((c) => `<td${/^(PASS|FAIL|INVALID)$/.test(c) ? ` class="${c}"` : ''}>${inline(c)}</td>`).join('')}</tr>`)
            .join('')}</tbody></table></div>`,
        );
        break;
      case 'chart':
        body.push(`<figure id="chart-${b.chart.id}">${b.chart.svg}<figcaption>${inline(b.chart.caption)}</figcaption></figure>`);
        break;
      case 'decision':
        body.push(htmlDecision(b.items));
        break;
    }
  }
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Spike 003 report — ${esc(report.generatedAt)}</title><style>${CSS}</style></head><body>\n${body.join('\n')}\n</body></html>\n`;
}

/** Writes report.json (unless `json` is false), report.md, report.html and charts/*.svg into `dir`. */
export function writeReport(dir: string, report: SpikeReport, opts: { json?: boolean } = {}): { json: string; md: string; html: string } {
  mkdirSync(join(dir, 'charts'), { recursive: true });
  const blocks = buildDocument(report);
  const paths = { json: join(dir, 'report.json'), md: join(dir, 'report.md'), html: join(dir, 'report.html') };
  if (opts.json !== false) writeFileSync(paths.json, JSON.stringify(report, null, 1));
  writeFileSync(paths.md, renderMarkdown(report, blocks));
  writeFileSync(paths.html, renderHtml(report, blocks));
  for (const b of blocks) if (b.kind === 'chart') writeFileSync(join(dir, 'charts', `${b.chart.id}.svg`), b.chart.svg);
  return paths;
}

/** `reports/<timestamp>` under `base`, the timestamp safe for every file system. */
export function reportDir(base: string, at = new Date()): string {
  return join(base, at.toISOString().replace(/[:.]/g, '-').replace(/Z$/, 'Z'));
}

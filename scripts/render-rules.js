// Generates deploy/prometheus/lifeboat.prometheusrule.yaml (a kube-prometheus PrometheusRule) from
// deploy/prometheus/lifeboat.rules.yml, the one source of truth for lifeboat's alerting rules. The rule groups are
// carried over as YAML nodes, comments included, so both files read the same.
//
//   node scripts/render-rules.js          # (re)writes the PrometheusRule
//   node scripts/render-rules.js --check  # exits 1 when the PrometheusRule is not what the rules file renders to
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Document, parseDocument } = require('yaml');

const dir = join(__dirname, '..', 'deploy', 'prometheus');
const rulesFile = join(dir, 'lifeboat.rules.yml');
const prometheusRuleFile = join(dir, 'lifeboat.prometheusrule.yaml');

const HEADER = [
  ' Generated from lifeboat.rules.yml by `node scripts/render-rules.js`: edit that file, not this one.',
  '',
  ' Labels, so the usual Prometheus Operator set-ups load it without further configuration:',
  '   release: kube-prometheus-stack  the Helm chart kube-prometheus-stack selects PrometheusRules by',
  '                                   `release: <its Helm release name>` (ruleSelectorNilUsesHelmValues, the',
  '                                   default); change the value if you installed the chart under another name.',
  '   prometheus: k8s, role: alert-rules',
  "                                   the labels of kube-prometheus's own rules (jsonnet project, ruleSelector {}:",
  '                                   it loads every PrometheusRule; these labels match selectors written for',
  '                                   its conventions).',
  ' Both select PrometheusRules from every namespace by default (ruleNamespaceSelector {}).',
].join('\n');

/** The PrometheusRule manifest for a Prometheus rule file's text. */
function renderPrometheusRule(rulesText) {
  const source = parseDocument(rulesText);
  if (source.errors.length) throw new Error(`${rulesFile}: ${source.errors[0].message}`);
  const groups = source.get('groups', true);
  if (!groups) throw new Error(`${rulesFile}: no groups`);
  const doc = new Document({
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'lifeboat',
      namespace: 'monitoring',
      labels: {
        'app.kubernetes.io/name': 'lifeboat',
        'app.kubernetes.io/component': 'alert-rules',
        release: 'kube-prometheus-stack',
        prometheus: 'k8s',
        role: 'alert-rules',
      },
    },
    spec: {},
  });
  doc.commentBefore = HEADER;
  doc.setIn(['spec', 'groups'], groups);
  return doc.toString({ lineWidth: 0 });
}

function main() {
  const rendered = renderPrometheusRule(readFileSync(rulesFile, 'utf8'));
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(prometheusRuleFile, 'utf8');
    } catch {
      // missing: differs
    }
    if (current !== rendered) {
      console.error(`${prometheusRuleFile} is not what ${rulesFile} renders to: run \`node scripts/render-rules.js\``);
      process.exit(1);
    }
    return;
  }
  writeFileSync(prometheusRuleFile, rendered);
  console.log(`wrote ${prometheusRuleFile}`);
}

module.exports = { renderPrometheusRule, rulesFile, prometheusRuleFile };

if (require.main === module) main();

// `fanout alerts`: the alert rules a gateway would run (the built-in ones merged with an
// --alerts file), as a table, as Fanout's JSON, or as a Prometheus rule file for operators
// whose alerting lives in Prometheus and Alertmanager rather than in the gateway.
import type { Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { addGatewayOptions, configOrExit } from './options.js';
import { runCommand } from './failures.js';

export function registerAlertsCommand(program: Command): void {
  const cmd = program
    .command('alerts')
    .description('print the alert rules (built-in, plus --alerts FILE): a table, --json, or --prometheus for a Prometheus rule file (check it with `promtool check rules`)')
    .option('--json', "print the rules as Fanout's JSON (the shape an --alerts file takes)")
    .option('--prometheus', 'print a Prometheus alerting-rule file (YAML) over the /metrics series')
    .option('--group <name>', 'rule group name in the --prometheus file', 'fanout');
  addGatewayOptions(cmd, ['alerts']).action(async (flags: { json?: boolean; prometheus?: boolean; group: string } & Record<string, unknown>) => {
    const config = await configOrExit('alerts', () => loadConfig(flags));
    await runCommand('alerts', async () => {
      const { loadAlertConfig } = await import('../monitor/alert-rules.js');
      const { rules } = await configOrExit('alerts', () => loadAlertConfig(config.alerts));
      if (flags.prometheus) {
        const { prometheusRuleFile } = await import('../monitor/promql.js');
        process.stdout.write(prometheusRuleFile(rules, flags.group));
        return;
      }
      if (flags.json) {
        const asFile = rules.map((r) => ({
          name: r.name,
          signal: r.signal,
          op: r.op,
          threshold: r.threshold,
          resolve: r.resolve,
          for: r.forMs,
          resolveFor: r.resolveForMs,
          window: r.windowMs,
          ...(r.aggregate ? { aggregate: r.aggregate } : {}),
          severity: r.severity,
          description: r.description,
        }));
        process.stdout.write(JSON.stringify({ defaults: false, rules: asFile }, null, 2) + '\n');
        return;
      }
      for (const r of rules) console.log(`${r.name.padEnd(28)} ${r.severity.padEnd(8)} ${r.signal} ${r.op} ${r.threshold} for ${r.forMs / 1000}s  ${r.description}`);
    });
  });
}

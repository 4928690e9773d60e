// Wiring feature modules together: each module is started in list order with a dependency
// object holding only the services it declared, and what it provides is added for the
// modules after it. The whole list is checked before the first module starts, so a
// missing or misordered dependency fails start-up with a sentence naming both modules,
// instead of surfacing at the first request that needs it.
import type { FeatureModule, ServiceName, Services } from './services.js';

/** A module list whose declarations do not fit together (a programming error, found at start-up). */
export class ModuleWiringError extends Error {
  override readonly name = 'ModuleWiringError';
}

/** Throws a ModuleWiringError for the first need no earlier service provides, or a service provided twice. */
export function checkWiring(modules: readonly FeatureModule[], available: Iterable<ServiceName>): void {
  const providedBy = new Map<ServiceName, string>();
  for (const name of available) providedBy.set(name, 'the gateway');
  const laterProvider = (name: ServiceName, after: number): string | undefined => modules.slice(after + 1).find((m) => m.provides.includes(name))?.name;
  const seen = new Set<string>();
  modules.forEach((module, i) => {
    if (seen.has(module.name)) throw new ModuleWiringError(`module "${module.name}" is listed twice`);
    seen.add(module.name);
    for (const need of module.needs) {
      if (providedBy.has(need)) continue;
      const later = laterProvider(need, i);
      throw new ModuleWiringError(
        later
          ? `module "${module.name}" needs "${need}", which module "${later}" provides, but "${later}" is listed after it`
          : `module "${module.name}" needs "${need}", which no loaded module provides`,
      );
    }
    for (const use of module.uses) {
      const later = laterProvider(use, i);
      if (!providedBy.has(use) && later) throw new ModuleWiringError(`module "${module.name}" uses "${use}", which module "${later}" provides, but "${later}" is listed after it`);
    }
    for (const provided of module.provides) {
      const earlier = providedBy.get(provided);
      if (earlier) throw new ModuleWiringError(`module "${module.name}" provides "${provided}", which ${earlier === 'the gateway' ? 'the gateway' : `module "${earlier}"`} already provides`);
      providedBy.set(provided, module.name);
    }
  });
}

/**
 * Starts `modules` in order on top of the gateway's own `services`, adding what each
 * provides. Returns every service by name (the gateway's and the modules').
 */
export async function startModules(modules: readonly FeatureModule[], services: Partial<Services>): Promise<Partial<Services>> {
  const all: Partial<Record<ServiceName, unknown>> = { ...services };
  checkWiring(modules, Object.keys(all) as ServiceName[]);
  for (const module of modules) {
    const deps: Partial<Record<ServiceName, unknown>> = {};
    for (const name of [...module.needs, ...module.uses]) if (all[name] !== undefined) deps[name] = all[name];
    const provided = (await module.start(deps as Partial<Services>)) as Partial<Record<ServiceName, unknown>> | undefined;
    for (const name of module.provides) {
      if (provided?.[name] === undefined) throw new ModuleWiringError(`module "${module.name}" declares that it provides "${name}" but its start() returned none`);
      all[name] = provided[name];
    }
  }
  return all as Partial<Services>;
}

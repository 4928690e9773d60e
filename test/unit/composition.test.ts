// The composition root's wiring rules: each module gets exactly what it declared, a
// missing or misordered dependency fails start-up with both modules named (before any
// module started), and a gateway built from a broken list never listens.
import { describe, expect, it } from 'vitest';
import { ModuleWiringError, checkWiring, startModules } from '../../src/server/composition.js';
import { GATEWAY_SERVICE_NAMES, defineModule, type FeatureModule, type Services } from '../../src/server/services.js';
import { gatewayModules } from '../../src/server/modules.js';
import { startGateway } from '../helpers/gateway.js';

const fakeRouter = {} as Services['router'];
const fakeLog = {} as Services['log'];

describe('startModules', () => {
  it('hands each module only the services it declared, and what earlier modules provided', async () => {
    const seen: string[][] = [];
    const first = defineModule({
      name: 'first',
      needs: ['router'],
      provides: ['contentItems'],
      start: (deps) => {
        seen.push(Object.keys(deps));
        return { contentItems: { readable: () => Promise.reject(new Error('unused')), state: () => undefined } as unknown as Services['contentItems'] };
      },
    });
    const second = defineModule({
      name: 'second',
      needs: ['contentItems'],
      uses: ['database'],
      start: (deps) => void seen.push(Object.keys(deps)),
    });
    const all = await startModules([first, second], { router: fakeRouter, log: fakeLog });
    expect(seen).toEqual([['router'], ['contentItems']]);
    expect(Object.keys(all).sort()).toEqual(['contentItems', 'log', 'router']);
  });

  it('fails before any module starts when a need is provided by nobody, naming the module and the need', async () => {
    let started = 0;
    const needy = defineModule({ name: 'needy', needs: ['content'], start: () => void started++ });
    const before = defineModule({ name: 'before', needs: [], start: () => void started++ });
    await expect(startModules([before, needy], {})).rejects.toThrow(new ModuleWiringError('module "needy" needs "content", which no loaded module provides'));
    expect(started).toBe(0);
  });

  it('names the provider listed too late, for needs and for optional uses', () => {
    const provider = defineModule({ name: 'changes', needs: [], provides: ['database'], start: () => ({ database: {} as Services['database'] }) });
    const needs = defineModule({ name: 'realtime', needs: ['database'], start: () => undefined });
    const uses = defineModule({ name: 'health', needs: [], uses: ['database'], start: () => undefined });
    expect(() => checkWiring([needs, provider], [])).toThrow('module "realtime" needs "database", which module "changes" provides, but "changes" is listed after it');
    expect(() => checkWiring([uses, provider], [])).toThrow('module "health" uses "database", which module "changes" provides, but "changes" is listed after it');
    expect(() => checkWiring([provider, needs, uses], [])).not.toThrow();
    // An optional use nobody provides is simply absent.
    expect(() => checkWiring([uses], [])).not.toThrow();
  });

  it('refuses a service provided twice, and a module listed twice', () => {
    const a = defineModule({ name: 'a', needs: [], provides: ['database'], start: () => ({ database: {} as Services['database'] }) });
    const b = defineModule({ name: 'b', needs: [], provides: ['database'], start: () => ({ database: {} as Services['database'] }) });
    expect(() => checkWiring([a, b], [])).toThrow('module "b" provides "database", which module "a" already provides');
    expect(() => checkWiring([a], ['database'])).toThrow('module "a" provides "database", which the gateway already provides');
    expect(() => checkWiring([a, a], [])).toThrow('module "a" is listed twice');
  });

  it('refuses a module whose start() does not return what it declared', async () => {
    const liar = defineModule({ name: 'liar', needs: [], provides: ['database'], start: () => ({}) as Pick<Services, 'database'> });
    await expect(startModules([liar], {})).rejects.toThrow('module "liar" declares that it provides "database" but its start() returned none');
  });
});

describe('the gateway module list', () => {
  it('fits together as shipped', () => {
    expect(() => checkWiring(gatewayModules, GATEWAY_SERVICE_NAMES)).not.toThrow();
  });

  it('fails gateway start-up, not the first request, when a module is missing', async () => {
    const withoutItems: FeatureModule[] = gatewayModules.filter((m) => m.name !== 'content-items');
    await expect(startGateway({}, { modules: withoutItems })).rejects.toThrow('module "sse" needs "contentItems", which no loaded module provides');
  });
});

import type { GatewayPlugin, PluginInstance } from '../../../core/plugins/types.js';

/**
 * A plugin that does nothing in every request hook: what plugins-overhead measures is the pipeline's cost of
 * calling hooks, not anything a plugin does. The hooks are shared functions so N instances stay monomorphic.
 */
function noop(): void {}

const INSTANCE: PluginInstance = { preRoute: noop, preHandler: noop, postHandler: noop, postResponse: noop };

export function createNoopPlugin(name: string): GatewayPlugin {
  return { name, version: '1.0.0', init: () => INSTANCE };
}

export default createNoopPlugin('noop');

import type { GatewayPlugin } from '../types.js';

/** First-party plugins, available by name in config without a pluginDirs entry. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const builtinPlugins: Record<string, GatewayPlugin<any>> = {};

import type { ServerEngineFactory } from '../../core/contracts/server.js';
import { createServerEngine as nodeHttp } from './node-http/index.js';
import { createServerEngine as own } from './own/index.js';

export const serverEngineVariants: Record<string, ServerEngineFactory> = { 'node-http': nodeHttp, own };

/** node:http stays the default until the own engine passes the safety suites and its efficiency targets (issue 18). */
export const DEFAULT_SERVER_ENGINE = 'node-http';

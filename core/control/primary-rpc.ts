import cluster, { type Worker } from 'node:cluster';
import { sendToPrimary, sendToWorker } from './ipc.js';

/**
 * Services that must see every worker's traffic (e.g. a rate limiter's in-memory store, which would allow
 * N× the limit if each worker counted alone) run in the primary process. A worker calls them over the cluster
 * IPC channel; in single-process mode (`server.workers: 0`) the call is a direct function call.
 *
 * A service is registered at module load (a plugin module registers its own), so it exists in the primary
 * and in every worker alike.
 */
export type PrimaryService = (payload: unknown) => unknown;

const services = new Map<string, PrimaryService>();
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextId = 1;
let listening = false;

export interface RpcRequest {
  type: 'RPC';
  id: number;
  service: string;
  payload: unknown;
}

export interface RpcResponse {
  type: 'RPC_RESULT';
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export function registerPrimaryService(name: string, fn: PrimaryService): void {
  services.set(name, fn);
}

function invoke(name: string, payload: unknown): Promise<unknown> {
  const fn = services.get(name);
  if (fn === undefined) return Promise.reject(new Error(`no primary service "${name}"`));
  try {
    return Promise.resolve(fn(payload));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

export function callPrimary(name: string, payload: unknown): Promise<unknown> {
  if (!cluster.isWorker || process.send === undefined) return invoke(name, payload);
  if (!listening) {
    listening = true;
    process.on('message', (msg: RpcResponse) => {
      if (msg === null || typeof msg !== 'object' || msg.type !== 'RPC_RESULT') return;
      const p = pending.get(msg.id);
      if (p === undefined) return;
      pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new Error(msg.error));
    });
    // A primary that dies with calls outstanding never answers them; an orphaned worker drains its in-flight
    // requests (core/control/worker.ts), and one waiting on such a call would otherwise hang until the drain deadline.
    process.once('disconnect', () => {
      for (const [id, p] of pending) {
        pending.delete(id);
        p.reject(new Error('primary unreachable: IPC channel closed'));
      }
    });
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    sendToPrimary({ type: 'RPC', id, service: name, payload } satisfies RpcRequest, (err) => {
      if (pending.delete(id)) reject(new Error(`primary unreachable: ${err.message}`));
    });
  });
}

/** The orchestrator routes each worker's RPC messages here. */
export function answerRpc(worker: Worker, msg: RpcRequest): void {
  invoke(msg.service, msg.payload).then(
    (value) => sendToWorker(worker, { type: 'RPC_RESULT', id: msg.id, ok: true, value } satisfies RpcResponse),
    (err: Error) => sendToWorker(worker, { type: 'RPC_RESULT', id: msg.id, ok: false, error: err.message } satisfies RpcResponse),
  );
}

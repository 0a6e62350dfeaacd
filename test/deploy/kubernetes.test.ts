import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service, type IContainer } from 'kubernetes-models/v1';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../core/config/loader.js';
import { HARD_STOP_GRACE_MS } from '../../core/control/orchestrator.js';

/**
 * deploy/kubernetes: every manifest is checked against the Kubernetes API schemas (kubernetes-models), the
 * gateway's own invariants (probes on the admin port, a grace period that outlasts the drain, non-root, read-only
 * root) are asserted, and the ConfigMap's gateway.json goes through `ts-gateway --check`. kubectl is not
 * installed here, so the two kustomizations are expanded by a small interpreter of the subset they use; a
 * kustomization field it does not know fails the test instead of being skipped.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const BASE = join(ROOT, 'deploy/kubernetes');
const REDIS = join(BASE, 'redis');
const execFileP = promisify(execFile);

type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } };

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'configMapGenerator', 'generatorOptions']);

/** `kubectl kustomize DIR` for resources (files and directories), configMapGenerator (files; create/replace). */
function kustomize(dir: string): Manifest[] {
  const k = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as {
    resources?: string[];
    configMapGenerator?: Array<{ name: string; behavior?: 'create' | 'replace'; files: string[] }>;
    generatorOptions?: { disableNameSuffixHash?: boolean };
  };
  for (const field of Object.keys(k)) expect(KNOWN_FIELDS.has(field), `${dir}/kustomization.yaml: field ${field} is not interpreted by this test`).toBe(true);
  let out: Manifest[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    expect(existsSync(path), `${dir}/kustomization.yaml lists ${r}, which does not exist`).toBe(true);
    if (statSync(path).isDirectory()) {
      out.push(...kustomize(path));
      continue;
    }
    for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
      expect(doc.errors, `${path}: YAML errors`).toEqual([]);
      out.push(doc.toJS() as Manifest);
    }
  }
  // The watcher hot-reloads an updated ConfigMap only if its name is stable (see kustomization.yaml).
  if (k.configMapGenerator !== undefined) expect(k.generatorOptions?.disableNameSuffixHash, `${dir}: disableNameSuffixHash`).toBe(true);
  for (const g of k.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const f of g.files) {
      expect(existsSync(join(dir, f)), `${dir}: configMapGenerator file ${f} does not exist`).toBe(true);
      data[basename(f)] = readFileSync(join(dir, f), 'utf8');
    }
    const cm: Manifest = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data };
    const existing = out.findIndex((m) => m.kind === 'ConfigMap' && m.metadata.name === g.name);
    if (g.behavior === 'replace') {
      expect(existing, `${dir}: replaces ConfigMap ${g.name}, which the resources do not define`).toBeGreaterThanOrEqual(0);
      out = out.map((m, i) => (i === existing ? cm : m));
    } else {
      expect(existing, `${dir}: ConfigMap ${g.name} defined twice`).toBe(-1);
      out.push(cm);
    }
  }
  return out;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

/** Schema-checks one manifest; throws on a violation or an unknown kind. */
function validateManifest(m: Manifest): void {
  const Model = MODELS[`${m.apiVersion}/${m.kind}`];
  if (Model === undefined) throw new Error(`${m.apiVersion} ${m.kind} ${m.metadata.name}: no schema known to this test`);
  new Model(m as never).validate();
}

const find = <T>(list: Manifest[], kind: string, name: string, Model: new (data: never) => T): T => {
  const m = list.find((x) => x.kind === kind && x.metadata.name === name);
  if (m === undefined) throw new Error(`no ${kind} ${name}`);
  return new Model(m as never);
};

const LOOPBACK = /^(127\.|::1$|localhost$)/;

/** The numeric container port a probe or Service port names. */
function portOf(container: IContainer, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** A CPU quantity ("2", "1500m", 0.5) in cores. */
function cpuCores(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  const text = String(q);
  return text.endsWith('m') ? Number(text.slice(0, -1)) / 1000 : Number(text);
}

function preStopSeconds(container: IContainer): number {
  const h = container.lifecycle?.preStop;
  if (h?.sleep !== undefined) return h.sleep.seconds;
  const cmd = h?.exec?.command ?? [];
  return cmd[0] === 'sleep' && cmd.length === 2 ? Number(cmd[1]) : 0;
}

/** The gateway's own rules for its Deployment, as a list of broken ones (empty = fine). */
function gatewayProblems(list: Manifest[]): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, what: string): void => {
    if (!ok) problems.push(what);
  };
  const d = find(list, 'Deployment', 'ts-gateway', Deployment);
  const pod = d.spec!.template.spec!;
  const c = pod.containers.find((x) => x.name === 'gateway')!;
  // the config the pod runs: --config names a file in the mounted ConfigMap
  const args = c.args ?? [];
  const configPath = args[args.indexOf('--config') + 1] ?? '';
  const mount = c.volumeMounts?.find((m) => m.mountPath === dirname(configPath));
  check(mount !== undefined, `--config ${configPath}: no volume mounted at ${dirname(configPath)}`);
  check(mount?.subPath === undefined, 'the config volume is mounted with subPath: kubelet never updates it, so hot reload never happens');
  const volume = pod.volumes?.find((v) => v.name === mount?.name);
  const cm = find(list, 'ConfigMap', volume?.configMap?.name ?? '(none)', ConfigMap);
  const text = cm.data?.[basename(configPath)];
  check(text !== undefined, `ConfigMap ${cm.metadata?.name} has no key ${basename(configPath)}`);
  const config = JSON.parse(text ?? '{}') as {
    server?: { host?: string; port?: number; workers?: number; shutdownTimeoutMs?: number };
    admin?: { host?: string; port?: number };
  };
  const adminPort = config.admin?.port ?? 9901;
  check(!LOOPBACK.test(config.admin?.host ?? '127.0.0.1'), 'admin.host is loopback: the kubelet cannot reach the probes');
  check(!LOOPBACK.test(config.server?.host ?? '127.0.0.1'), 'server.host is loopback: the Service cannot reach the gateway');
  check(config.server?.workers !== undefined, 'server.workers unset: the default (CPU count) counts the node, not the pod limit');
  check(portOf(c, 'http') === (config.server?.port ?? 8080), "container port 'http' is not server.port");
  for (const [name, probe, path] of [
    ['readinessProbe', c.readinessProbe, '/ready'],
    ['livenessProbe', c.livenessProbe, '/health'],
  ] as const) {
    check(probe?.httpGet?.path === path, `${name} path is not ${path}`);
    check(portOf(c, probe?.httpGet?.port) === adminPort, `${name} port is not admin.port ${adminPort}`);
  }
  if (c.startupProbe !== undefined) check(portOf(c, c.startupProbe.httpGet?.port) === adminPort, 'startupProbe port is not admin.port');
  const drainMs = preStopSeconds(c) * 1000 + (config.server?.shutdownTimeoutMs ?? 10_000) + HARD_STOP_GRACE_MS;
  check(preStopSeconds(c) > 0, 'no preStop pause: endpoints may still route to a pod that stopped accepting');
  check(
    (pod.terminationGracePeriodSeconds ?? 30) * 1000 > drainMs,
    `terminationGracePeriodSeconds must exceed preStop + shutdownTimeoutMs + hard-stop grace (${drainMs} ms)`,
  );
  const sc = { ...pod.securityContext, ...c.securityContext };
  check(sc.runAsNonRoot === true, 'runAsNonRoot is not true');
  check(sc.runAsUser !== undefined && sc.runAsUser !== 0, 'runAsUser is unset or 0');
  check(c.securityContext?.readOnlyRootFilesystem === true, 'readOnlyRootFilesystem is not true');
  check(c.securityContext?.allowPrivilegeEscalation === false, 'allowPrivilegeEscalation is not false');
  check(c.securityContext?.capabilities?.drop?.includes('ALL') === true, 'capabilities do not drop ALL');
  // one process per core the pod may use: more workers than the CPU limit only adds throttling and memory
  const cpuLimit = cpuCores(c.resources?.limits?.cpu);
  check(
    cpuLimit === undefined || (config.server?.workers ?? 0) <= Math.max(1, Math.ceil(cpuLimit)),
    `server.workers exceeds the CPU limit (${cpuLimit} cores)`,
  );
  for (const k of ['requests', 'limits'] as const) for (const r of ['cpu', 'memory']) check(c.resources?.[k]?.[r] !== undefined, `resources.${k}.${r} unset`);
  // what points at the pods must select them
  const labels = d.spec!.template.metadata?.labels ?? {};
  const selects = (sel: Record<string, string> | undefined): boolean => sel !== undefined && Object.entries(sel).every(([k, v]) => labels[k] === v);
  const svc = find(list, 'Service', 'ts-gateway', Service);
  check(selects(svc.spec?.selector), 'the Service does not select the gateway pods');
  for (const p of svc.spec?.ports ?? [])
    check(portOf(c, p.targetPort) !== undefined, `Service port ${p.name}: targetPort ${p.targetPort} is not a container port`);
  check(!(svc.spec?.ports ?? []).some((p) => portOf(c, p.targetPort) === adminPort), 'the Service exposes the admin port');
  check(selects(find(list, 'PodDisruptionBudget', 'ts-gateway', PodDisruptionBudget).spec?.selector?.matchLabels), 'the PDB does not select the gateway pods');
  const hpa = find(list, 'HorizontalPodAutoscaler', 'ts-gateway', HorizontalPodAutoscaler);
  check(hpa.spec?.scaleTargetRef.kind === 'Deployment' && hpa.spec.scaleTargetRef.name === 'ts-gateway', 'the HPA does not target the Deployment');
  check(hpa.spec?.metrics?.some((m) => m.resource?.name === 'cpu') === true, 'the HPA has no CPU metric');
  check((hpa.spec?.minReplicas ?? 1) >= 2, 'HPA minReplicas < 2: the PDB would block every node drain');
  return problems;
}

const temp: string[] = [];
afterAll(() => {
  for (const d of temp) rmSync(d, { recursive: true, force: true });
});

/**
 * `ts-gateway --check` on a ConfigMap's gateway.json. Hosts in URLs become 127.0.0.1 port 1 first: --check builds
 * the runtime (the Redis store connects, upstream pools start), and this machine allows only loopback traffic.
 * The file as written is validated too, in process (schema only, no network).
 */
async function checkGatewayJson(text: string): Promise<{ stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-k8s-'));
  temp.push(dir);
  const original = join(dir, 'original.json');
  writeFileSync(original, text);
  const result = loadConfigFile(original);
  expect(result.ok ? [] : result.errors).toEqual([]);
  const local = join(dir, 'gateway.json');
  writeFileSync(local, text.replace(/(rediss?|https?):\/\/[^/"]+/g, '$1://127.0.0.1:1'));
  return execFileP(process.execPath, ['dist/core/cli.js', '--check', '--config', local], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

describe.each([
  ['base', BASE],
  ['redis overlay', REDIS],
])('deploy/kubernetes %s', (_name, dir) => {
  const manifests = kustomize(dir);

  it('every manifest passes the Kubernetes API schema', () => {
    expect(manifests.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual(
      expect.arrayContaining(['Deployment/ts-gateway', 'Service/ts-gateway', 'ConfigMap/ts-gateway-config']),
    );
    for (const m of manifests) expect(() => validateManifest(m), `${m.kind}/${m.metadata.name}`).not.toThrow();
  });

  it("the gateway's invariants hold (probes, drain timeline, non-root, read-only root, selectors)", () => {
    expect(gatewayProblems(manifests)).toEqual([]);
  });

  it('the ConfigMap gateway.json passes ts-gateway --check (its one warning: the admin API off loopback, on purpose)', async () => {
    const cm = find(manifests, 'ConfigMap', 'ts-gateway-config', ConfigMap);
    const { stdout, stderr } = await checkGatewayJson(cm.data!['gateway.json']!);
    expect(stdout).toMatch(/is valid \(1 warning\)/);
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^warning: \/admin\/host: 0\.0\.0\.0 is not a loopback address/)]);
  }, 60_000);
});

describe('the Redis overlay', () => {
  it('points every redis.url in the gateway config at the Redis Service it adds', () => {
    const manifests = kustomize(REDIS);
    const svc = find(manifests, 'Service', 'ts-gateway-redis', Service);
    const text = find(manifests, 'ConfigMap', 'ts-gateway-config', ConfigMap).data!['gateway.json']!;
    const urls = [...text.matchAll(/"url": "(rediss?:\/\/[^"]+)"/g)].map((m) => m[1]);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) expect(url).toBe(`redis://${svc.metadata!.name}:${svc.spec!.ports![0]!.port}`);
    expect(text).toMatch(/"store": "redis"/);
  });
});

describe('the checks can fail', () => {
  const base = (): Manifest[] => structuredClone(kustomize(BASE));
  const gatewayDeployment = (list: Manifest[]) =>
    list.find((m) => m.kind === 'Deployment')! as unknown as {
      spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: IContainer[] } } };
    };

  it('the schema rejects a Deployment with a string containerPort and one without a selector', () => {
    const list = base();
    const d = gatewayDeployment(list);
    (d.spec.template.spec.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = 'http';
    expect(() => validateManifest(list.find((m) => m.kind === 'Deployment')!)).toThrow(/containerPort must be integer/);
    const noSelector = base().find((m) => m.kind === 'Deployment')! as Manifest & { spec: Record<string, unknown> };
    delete noSelector.spec.selector;
    expect(() => validateManifest(noSelector)).toThrow(/selector/);
  });

  it('the invariants reject a short grace period, a root-writable filesystem, a probe on the data port, a subPath mount, too many workers', () => {
    const list = base();
    const pod = gatewayDeployment(list).spec.template.spec;
    const c = pod.containers[0]!;
    pod.terminationGracePeriodSeconds = 20;
    c.securityContext!.readOnlyRootFilesystem = false;
    c.readinessProbe!.httpGet!.port = 'http';
    c.volumeMounts![0]!.subPath = 'gateway.json';
    c.resources!.limits!.cpu = '1000m';
    const problems = gatewayProblems(list);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^terminationGracePeriodSeconds must exceed/),
        'readOnlyRootFilesystem is not true',
        'readinessProbe port is not admin.port 9901',
        expect.stringMatching(/subPath/),
        'server.workers exceeds the CPU limit (1 cores)',
      ]),
    );
  });
});

// deploy/kubernetes as kubectl renders it (kustomize): what a Sluice cluster needs to be right
// (issue 33). Probes on the admin port, never /mcp; a grace period longer than the drain; a
// non-root, read-only pod; the peer port open to Sluice pods only; the env the gateway reads; and
// the config in the ConfigMap accepted by Sluice itself, with the advertise address from the pod.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/load.ts';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- rendered YAML, checked field by field

function render(dir: string): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
}

for (const dir of ['deploy/kubernetes/base', 'deploy/kubernetes/overlays/example']) {
  describe(`kubectl kustomize ${dir}`, () => {
    const docs = render(dir);
    const one = (kind: string): Obj => {
      const found = docs.filter((d) => d['kind'] === kind);
      assert.equal(found.length, 1, `one ${kind}`);
      return found[0] as Obj;
    };
    const deployment = one('Deployment');
    const pod = deployment['spec']['template'];
    const container = pod['spec']['containers'][0] as Obj;
    const port = (name: string): number => (container['ports'] as Obj[]).find((p) => p['name'] === name)?.['containerPort'];
    const configMap = one('ConfigMap');
    const config = parseConfigText(configMap['data']['sluice.yaml'], 'configmap', { POD_IP: '10.1.2.3', SLUICE_ADMIN_TOKEN: 'an-admin-token-0123456789' });

    it('the ConfigMap is a config Sluice accepts; the peer listener advertises the pod address; the ports match the container', () => {
      assert.equal(config.cluster?.advertise, `10.1.2.3:${port('peer')}`);
      assert.equal(config.cluster?.listen.port, port('peer'));
      assert.equal(config.listen[0]?.port, port('mcp'));
      assert.equal(config.admin.listen?.port, port('admin'));
      const volume = (pod['spec']['volumes'] as Obj[]).find((v) => v['configMap']);
      assert.equal(volume?.['configMap']['name'], configMap['metadata']['name']);
    });

    it('probes ask /readyz and /healthz on the admin port, never /mcp', () => {
      assert.deepEqual(container['readinessProbe']['httpGet'], { path: '/readyz', port: 'admin' });
      assert.deepEqual(container['livenessProbe']['httpGet'], { path: '/healthz', port: 'admin' });
      assert.ok(!JSON.stringify([container['readinessProbe'], container['livenessProbe'], container['startupProbe']]).includes('/mcp'));
    });

    it('the grace period outlasts the drain; three replicas, a disruption budget and CPU autoscaling', () => {
      assert.ok(pod['spec']['terminationGracePeriodSeconds'] * 1000 > config.shutdown.drain + 5_000);
      assert.ok(deployment['spec']['replicas'] >= 3);
      const pdb = one('PodDisruptionBudget');
      assert.deepEqual(pdb['spec']['selector']['matchLabels'], deployment['spec']['selector']['matchLabels']);
      const hpa = one('HorizontalPodAutoscaler');
      assert.equal(hpa['spec']['scaleTargetRef']['name'], deployment['metadata']['name']);
      assert.equal(hpa['spec']['metrics'][0]['resource']['name'], 'cpu');
    });

    it('the pod runs as non-root on a read-only root file system with no capabilities', () => {
      const podSec = pod['spec']['securityContext'];
      assert.equal(podSec['runAsNonRoot'], true);
      assert.ok(podSec['runAsUser'] > 0);
      assert.equal(container['securityContext']['readOnlyRootFilesystem'], true);
      assert.equal(container['securityContext']['allowPrivilegeEscalation'], false);
      assert.deepEqual(container['securityContext']['capabilities']['drop'], ['ALL']);
    });

    it('the env the gateway reads: the pod IP, the session keys and the admin token from Secrets', () => {
      const env = new Map((container['env'] as Obj[]).map((e) => [e['name'], e['valueFrom']]));
      assert.deepEqual(env.get('POD_IP'), { fieldRef: { fieldPath: 'status.podIP' } });
      assert.equal(env.get('SLUICE_SESSION_KEYS')?.['secretKeyRef']?.['name'], 'sluice-session-keys');
      assert.equal(env.get('SLUICE_ADMIN_TOKEN')?.['secretKeyRef']?.['name'], 'sluice-admin');
    });

    it('the peer port is open to Sluice pods only; the Service has no affinity', () => {
      const policy = one('NetworkPolicy');
      assert.deepEqual(policy['spec']['podSelector']['matchLabels'], pod['metadata']['labels']);
      const peerRules = (policy['spec']['ingress'] as Obj[]).filter((r) => (r['ports'] as Obj[]).some((p) => p['port'] === 'peer' || p['port'] === port('peer')));
      assert.equal(peerRules.length, 1);
      assert.deepEqual(peerRules[0]?.['from'], [{ podSelector: { matchLabels: pod['metadata']['labels'] } }]);
      const service = one('Service');
      assert.deepEqual(service['spec']['selector'], pod['metadata']['labels']);
      assert.equal(service['spec']['ports'][0]['targetPort'], 'mcp');
      assert.ok(!service['spec']['sessionAffinity'] || service['spec']['sessionAffinity'] === 'None');
    });
  });
}

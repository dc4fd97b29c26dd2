// What the release integration tests share: the peers they start (the test engine with the base
// image, a test registry, the third-party image in it), the test registry as a service connection,
// a release of a compose app built and locked as a pipeline does it (BuildAndTag, then
// PushWithDigest), and the deploy settings every ComposeDeploy test starts from.
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { createCredentialSource } from '../../tasks/lib/auth';
import { buildAndTag, BuildAndTagOptions } from '../../tasks/lib/build';
import type { ComposeDeployOptions } from '../../tasks/lib/compose-deploy';
import type { EndpointInfo } from '../../tasks/lib/context';
import { pushWithDigest } from '../../tasks/lib/push';
import { RegistryClient } from '../../tasks/lib/registry/client';
import { BASE_IMAGE, startEngineWithBaseImage } from './base-image';
import { createTestContext } from './context';
import type { TestEngine } from './engine';
import { buildOptions, tagAndPush } from './images';
import { RegistryAuthMode, startRegistry, TestRegistry } from './registry';
import { composeDeployDefaults, pushWithDigestDefaults } from './task-defaults';

/** The test engine, with the base image, and a test registry with `auth`. */
export async function startReleasePeers(auth: RegistryAuthMode): Promise<{ engine: TestEngine; docker: Dockerode; registry: TestRegistry }> {
  const engine = await startEngineWithBaseImage();
  try {
    return { engine, docker: engine.docker, registry: await startRegistry(auth) };
  } catch (err) {
    await engine.stop();
    throw err;
  }
}

/** Pushes the base image to `registry` as the test apps' third-party image, `third-party/busybox:1.0` (with the registry's password, if it has one); returns its digest. */
export function pushThirdPartyImage(docker: Dockerode, registry: TestRegistry): Promise<string> {
  const auth = registry.username ? { username: registry.username, password: registry.password, serveraddress: registry.host } : {};
  return tagAndPush(docker, BASE_IMAGE, `${registry.host}/third-party/busybox:1.0`, auth);
}

/** The test registry as a Docker registry service connection (Basic auth). */
export function registryEndpoint(registry: TestRegistry): EndpointInfo {
  return { id: 'reg', input: 'containerRegistry', url: registry.url, scheme: 'UsernamePassword', auth: { username: registry.username!, password: registry.password! }, data: { registry: registry.url } };
}

/**
 * Builds the compose file's services (tagged `version`, REGISTRY and TAG set for interpolation) and
 * pushes them with PushWithDigest, the compose file's third-party images resolved; returns the lock file.
 */
export async function buildAndLock(
  docker: Dockerode,
  registry: TestRegistry,
  o: { composeFile: string; version: string; dir: string; build?: Partial<BuildAndTagOptions>; buildId: string; commit?: string },
): Promise<string> {
  const ctx = createTestContext();
  const env = { REGISTRY: registry.host, TAG: o.version };
  const options = buildOptions(docker, {
    composeFile: o.composeFile,
    tags: [o.version],
    addPipelineLabels: true,
    buildRecordPath: path.join(o.dir, `record-${o.version}.json`),
    env,
    ...o.build,
    pipeline: { buildNumber: o.version, buildId: o.buildId, commit: o.commit, ...o.build?.pipeline },
  });
  await buildAndTag(options, ctx);
  const credentials = createCredentialSource({ endpoint: registryEndpoint(registry), setSecret: (s) => ctx.setSecret(s), dockerConfigDir: path.join(o.dir, 'no-config') });
  const client = new RegistryClient({ credentials, log: ctx, setSecret: (s) => ctx.setSecret(s) });
  try {
    const pipeline = { buildNumber: o.version, buildId: o.buildId };
    const lockFile = path.join(o.dir, `lock-${o.version}.json`);
    await pushWithDigest({ engine: async () => docker, client, credentials, buildRecordPath: options.buildRecordPath, images: [], additionalTags: [], composeFile: o.composeFile, lockFile, publishArtifact: false, artifactName: 'image-lock', ...pushWithDigestDefaults(), pipeline, env }, ctx);
    return lockFile;
  } finally {
    client.close();
  }
}

/** The settings a test deploy starts from: the task.json defaults (the gate and rollback on), the local test engine, no profiles, nothing published. */
export function localDeploy(engine: TestEngine): Pick<ComposeDeployOptions, 'profiles' | 'target' | 'waitTimeoutSeconds' | 'publishRenderedFile' | 'env'> & ReturnType<typeof composeDeployDefaults> {
  return {
    ...composeDeployDefaults(),
    profiles: [],
    target: { type: 'local', dockerHost: engine.dockerHost },
    waitTimeoutSeconds: 30,
    publishRenderedFile: false,
    env: { PATH: process.env.PATH },
  };
}
